//! Merging of several config files, with the Collector's rules: maps merge
//! recursively, anything else (scalars, lists, null) from a later file
//! replaces the earlier value.

use crate::node::{Node, Value};

pub(crate) fn merge(base: Node, overlay: Node) -> Node {
    match (base.value, overlay.value) {
        (Value::Map(mut b), Value::Map(o)) => {
            for (k, v) in o {
                // Keep the key where the first file put it so diagnostics
                // follow the base file's order.
                if let Some((idx, _, old)) = b.shift_remove_full(&k) {
                    b.shift_insert(idx, k, merge(old, v));
                } else {
                    b.insert(k, v);
                }
            }
            Node {
                value: Value::Map(b),
                span: overlay.span,
                key_span: overlay.key_span,
                path: overlay.path,
            }
        }
        (_, value) => Node { value, ..overlay },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(file: &str, text: &str) -> Node {
        Node::from_yaml_str(file, text).unwrap()
    }

    #[test]
    fn maps_merge_and_scalars_lists_replace() {
        let a = n(
            "a.yaml",
            "receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: a}\n      http:\nlist: [1, 2]\nkeep: x\n",
        );
        let b = n(
            "b.yaml",
            "receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: b}\nlist: [3]\nnew: y\n",
        );
        let m = merge(a, b);
        let protocols = m
            .get("receivers")
            .unwrap()
            .get("otlp")
            .unwrap()
            .get("protocols")
            .unwrap();
        let ep = protocols.get("grpc").unwrap().get("endpoint").unwrap();
        assert_eq!(ep.as_str(), Some("b"));
        assert_eq!(ep.span().to_string(), "b.yaml:4:24");
        assert!(protocols.get("http").unwrap().is_null());
        let list = m.get("list").unwrap().as_seq().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(m.get("keep").unwrap().span().file.as_ref(), "a.yaml");
        assert_eq!(m.get("new").unwrap().as_str(), Some("y"));
        let keys: Vec<&String> = m.as_map().unwrap().keys().collect();
        assert_eq!(keys, ["receivers", "list", "keep", "new"]);
    }

    #[test]
    fn null_replaces_map() {
        let m = merge(n("a", "x: {a: 1}\n"), n("b", "x:\n"));
        assert!(m.get("x").unwrap().is_null());
    }
}
