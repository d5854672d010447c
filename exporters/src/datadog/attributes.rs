//! Resource attributes → Datadog host and tags, shared by metrics and logs.
//!
//! Follows the Collector's mapping (`opentelemetry-mapping-go`
//! `pkg/otlp/attributes`), simplified where it needs cloud metadata:
//!
//! Host, first found of: `host` (a literal host tag), `datadog.host.name`,
//! none on AWS ECS Fargate (`aws.ecs.launchtype: fargate`), `k8s.node.name`
//! (with `-<k8s.cluster.name>` when known), `host.id`, `host.name`. Loopback
//! names (`localhost`, `127.0.0.1`, …) count as none. With none, the
//! exporter's `hostname` (default: this machine's) is used. The Collector's
//! per-cloud rules (EC2 instance ids vs. internal DNS names, GCP
//! `name.project`, Azure VM ids) are not reproduced: `host.id`/`host.name`
//! stand in for them.
//!
//! Tags: `service`, `env`, `version` from `service.name`,
//! `deployment.environment(.name)`, `service.version`; the container, cloud,
//! ECS and Kubernetes attributes the Collector maps (`container.id` →
//! `container_id`, `k8s.pod.name` → `pod_name`, …); `datadog.container.tag.X`
//! → `X`. With `resource_attributes_as_tags`, every resource attribute is
//! added as `key:value` too.

use confluo_pipeline::attrs::to_text;
use confluo_pipeline::proto::common::{any_value::Value, AnyValue, KeyValue};

/// Host names that identify no host.
const INVALID_HOSTS: &[&str] = &[
    "0.0.0.0",
    "127.0.0.1",
    "localhost",
    "localhost.localdomain",
    "localhost6.localdomain6",
    "ip6-localhost",
];

/// OTel resource attribute → Datadog tag key.
const TAG_MAPPING: &[(&str, &str)] = &[
    ("service.name", "service"),
    ("deployment.environment", "env"),
    ("deployment.environment.name", "env"),
    ("service.version", "version"),
    ("container.id", "container_id"),
    ("container.name", "container_name"),
    ("container.image.name", "image_name"),
    ("container.image.tag", "image_tag"),
    ("container.runtime", "runtime"),
    ("cloud.provider", "cloud_provider"),
    ("cloud.region", "region"),
    ("cloud.availability_zone", "zone"),
    ("aws.ecs.task.family", "task_family"),
    ("aws.ecs.task.arn", "task_arn"),
    ("aws.ecs.cluster.arn", "ecs_cluster_name"),
    ("aws.ecs.task.revision", "task_version"),
    ("aws.ecs.container.arn", "ecs_container_name"),
    ("k8s.container.name", "kube_container_name"),
    ("k8s.cluster.name", "kube_cluster_name"),
    ("k8s.deployment.name", "kube_deployment"),
    ("k8s.replicaset.name", "kube_replica_set"),
    ("k8s.statefulset.name", "kube_stateful_set"),
    ("k8s.daemonset.name", "kube_daemon_set"),
    ("k8s.job.name", "kube_job"),
    ("k8s.cronjob.name", "kube_cronjob"),
    ("k8s.namespace.name", "kube_namespace"),
    ("k8s.pod.name", "pod_name"),
    ("tags.datadoghq.com/env", "env"),
    ("tags.datadoghq.com/service", "service"),
    ("tags.datadoghq.com/version", "version"),
    ("app.kubernetes.io/name", "kube_app_name"),
    ("app.kubernetes.io/instance", "kube_app_instance"),
    ("app.kubernetes.io/version", "kube_app_version"),
    ("app.kubernetes.io/component", "kube_app_component"),
    ("app.kubernetes.io/part-of", "kube_app_part_of"),
    ("app.kubernetes.io/managed-by", "kube_app_managed_by"),
];

const CUSTOM_CONTAINER_TAG_PREFIX: &str = "datadog.container.tag.";

fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn get_str<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match get(attrs, key).and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// The host these attributes name, or `None` (use the fallback).
pub fn host_from_attributes(attrs: &[KeyValue]) -> Option<String> {
    let candidate = unsanitized_host(attrs)?;
    if candidate.is_empty() || INVALID_HOSTS.contains(&candidate.as_str()) {
        return None;
    }
    Some(candidate)
}

fn unsanitized_host(attrs: &[KeyValue]) -> Option<String> {
    if let Some(v) = get(attrs, "host") {
        return Some(to_text(v));
    }
    if let Some(h) = get_str(attrs, "datadog.host.name") {
        return Some(h.to_string());
    }
    if get_str(attrs, "aws.ecs.launchtype") == Some("fargate") {
        return None;
    }
    if let Some(node) = get_str(attrs, "k8s.node.name") {
        return Some(match get_str(attrs, "k8s.cluster.name") {
            Some(cluster) if !cluster.is_empty() => format!("{node}-{cluster}"),
            _ => node.to_string(),
        });
    }
    get_str(attrs, "host.id")
        .or_else(|| get_str(attrs, "host.name"))
        .map(str::to_string)
}

/// `key:value`, with Datadog's `n/a` for an empty value.
pub fn tag(key: &str, value: &str) -> String {
    let value = if value.is_empty() { "n/a" } else { value };
    let mut t = String::with_capacity(key.len() + 1 + value.len());
    t.push_str(key);
    t.push(':');
    t.push_str(value);
    t
}

/// The tags a resource contributes to every metric point / log of it.
pub fn resource_tags(attrs: &[KeyValue], all_as_tags: bool) -> Vec<String> {
    let mut tags = Vec::new();
    for kv in attrs {
        let Some(v) = kv.value.as_ref() else { continue };
        let Some(Value::StringValue(s)) = v.value.as_ref() else {
            if all_as_tags {
                tags.push(tag(&kv.key, &to_text(v)));
            }
            continue;
        };
        if s.is_empty() {
            continue;
        }
        if let Some((_, dd)) = TAG_MAPPING.iter().find(|(otel, _)| *otel == kv.key) {
            tags.push(tag(dd, s));
        } else if let Some(custom) = kv.key.strip_prefix(CUSTOM_CONTAINER_TAG_PREFIX) {
            if !custom.is_empty() {
                tags.push(tag(custom, s));
            }
        }
        if all_as_tags {
            tags.push(tag(&kv.key, s));
        }
    }
    tags.sort_unstable();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use confluo_pipeline::attrs::{int, key_value, string};

    fn kv(k: &str, v: &str) -> KeyValue {
        key_value(k, string(v))
    }

    #[test]
    fn host_follows_the_collectors_order() {
        let all = vec![
            kv("host.name", "hn"),
            kv("host.id", "hid"),
            kv("k8s.node.name", "node"),
            kv("k8s.cluster.name", "c1"),
            kv("datadog.host.name", "custom"),
        ];
        assert_eq!(host_from_attributes(&all).as_deref(), Some("custom"));
        assert_eq!(host_from_attributes(&all[..4]).as_deref(), Some("node-c1"));
        assert_eq!(host_from_attributes(&all[..3]).as_deref(), Some("node"));
        assert_eq!(host_from_attributes(&all[..2]).as_deref(), Some("hid"));
        assert_eq!(host_from_attributes(&all[..1]).as_deref(), Some("hn"));
        assert_eq!(
            host_from_attributes(&[key_value("host", int(7))]).as_deref(),
            Some("7")
        );
        assert_eq!(host_from_attributes(&[kv("host.name", "localhost")]), None);
        let fargate = vec![kv("aws.ecs.launchtype", "fargate"), kv("host.name", "x")];
        assert_eq!(host_from_attributes(&fargate), None);
    }

    #[test]
    fn tags_map_unified_service_tagging_and_containers() {
        let attrs = vec![
            kv("service.name", "api"),
            kv("deployment.environment", "prod"),
            kv("service.version", "1.2"),
            kv("k8s.pod.name", "p-1"),
            kv("datadog.container.tag.team", "core"),
            kv("custom", "x"),
            kv("empty", ""),
        ];
        assert_eq!(
            resource_tags(&attrs, false),
            vec![
                "env:prod",
                "pod_name:p-1",
                "service:api",
                "team:core",
                "version:1.2"
            ]
        );
        let all = resource_tags(&attrs, true);
        assert!(all.contains(&"custom:x".to_string()));
        assert!(all.contains(&"service.name:api".to_string()));
        assert!(all.contains(&"service:api".to_string()));
    }
}
