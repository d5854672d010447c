//! Request body decompression with a hard cap on the decompressed size, so a
//! small gzip bomb cannot allocate gigabytes.

use std::io::Read;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecompressError {
    #[error("unsupported Content-Encoding `{0}` (supported: gzip, zstd, identity)")]
    Unsupported(String),
    #[error("invalid {encoding} body: {reason}")]
    Corrupt {
        encoding: &'static str,
        reason: String,
    },
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

/// Decodes `body` per the Content-Encoding value (`None`/`identity` = as is).
/// The output never exceeds `limit` bytes.
pub fn decompress(
    encoding: Option<&str>,
    body: bytes::Bytes,
    limit: usize,
) -> Result<bytes::Bytes, DecompressError> {
    let encoding = encoding.map(str::trim).unwrap_or("");
    match encoding.to_ascii_lowercase().as_str() {
        "" | "identity" => {
            if body.len() > limit {
                return Err(DecompressError::TooLarge { limit });
            }
            Ok(body)
        }
        "gzip" | "x-gzip" => read_capped(flate2::read::GzDecoder::new(&body[..]), "gzip", limit),
        "deflate" => read_capped(flate2::read::ZlibDecoder::new(&body[..]), "deflate", limit),
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(&body[..]).map_err(|e| {
                DecompressError::Corrupt {
                    encoding: "zstd",
                    reason: e.to_string(),
                }
            })?;
            read_capped(decoder, "zstd", limit)
        }
        other => Err(DecompressError::Unsupported(
            other.chars().take(32).collect(),
        )),
    }
}

fn read_capped(
    reader: impl Read,
    encoding: &'static str,
    limit: usize,
) -> Result<bytes::Bytes, DecompressError> {
    let mut out = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over".
    let mut capped = reader.take(limit as u64 + 1);
    capped
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt {
            encoding,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    Ok(out.into())
}

/// Compresses with gzip (for exporters).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Compresses with zstd at its default level (for exporters).
pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 3).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_and_zstd_round_trip() {
        let data = b"hello hello hello hello".repeat(10);
        for (enc, packed) in [("gzip", gzip(&data)), ("zstd", zstd(&data))] {
            let out = decompress(Some(enc), packed.into(), 1 << 20).unwrap();
            assert_eq!(&out[..], &data[..]);
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 100 << 10);
        assert_eq!(
            decompress(Some("gzip"), bomb.into(), 1 << 20),
            Err(DecompressError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn corrupt_and_unknown_encodings_are_errors() {
        assert!(matches!(
            decompress(Some("gzip"), bytes::Bytes::from_static(b"not gzip"), 100),
            Err(DecompressError::Corrupt {
                encoding: "gzip",
                ..
            })
        ));
        assert!(matches!(
            decompress(Some("br"), bytes::Bytes::from_static(b"x"), 100),
            Err(DecompressError::Unsupported(_))
        ));
    }
}
