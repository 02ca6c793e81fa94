//! The serde models of the identity keys (`[[data]]`, a group's `token`),
//! apart from [`crate::scenario`] so that [`crate::identity`], which the
//! transports use, depends on no planning module.

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `[[data]]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// CSV file with a header row, relative to the scenario file.
    pub file: Spanned<String>,
    /// `cycle` (default), `unique` or `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Spanned<String>>,
    /// Seed of `random` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<Spanned<u64>>,
    /// `true` (every column) or a list of columns whose values are secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Spanned<SecretSpec>>,
}

/// `secret = true` or `secret = ["token"]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SecretSpec {
    /// Every column, or none.
    All(bool),
    /// These columns.
    Columns(Vec<String>),
}

/// `token = { ... }` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// `"HS256"` or `"RS256"`.
    pub alg: String,
    /// The key: an HMAC secret (HS256), usually `"${JWT_KEY}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A file holding the key: the HMAC secret's bytes, or an RSA private
    /// key in PEM (RS256); relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Claims; string values are templates.
    #[serde(default)]
    pub claims: toml::Table,
}

/// A group's `publish = { rate, via, payload_bytes }`: every client
/// publishes to its own room.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPublishSpec {
    /// Messages per second per client.
    pub rate: f64,
    /// `"same"` (default): on the client's own connection; `"http"`: to
    /// the target's publish endpoint (`[profile.publish]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Size of each message in bytes (default 64; the envelope needs 48).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_bytes: Option<u64>,
}

/// `rooms = { count = 1000, size = "zipf", s = 1.1, seed = 1 }`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsSpec {
    /// Number of rooms (the publisher's channels).
    pub count: u64,
    /// `"fixed"` (default), `"uniform"` or `"zipf"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Zipf exponent (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<f64>,
    /// Seed of `uniform` and `zipf` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}
