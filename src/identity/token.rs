//! Signed tokens per client (`token = { alg, key | key_file, claims }` on a
//! group): a JWT (RFC 7519) signed with HS256 or RS256 (RFC 7518 section
//! 3) for each client, its claims rendered from templates, usable as
//! `{token}`. `exp`, `nbf` and `iat` may be written relative to the moment
//! the client signs (`"+1h"`, `"-30s"`, `"now"`), as NumericDates (RFC 7519
//! section 2). The key never leaves memory: a `${VAR}` key is a registered
//! secret, a literal or file key is registered too, and every token is
//! registered as `{token}`.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

pub use crate::scenario_keys::TokenSpec;

use super::template::{compile, Names, Template, Unknown, Vars};

/// A compiled claim value.
#[derive(Debug, Clone)]
enum Claim {
    Text(Template),
    /// Seconds from the signing moment.
    Time(i64),
    Plain(serde_json::Value),
    List(Vec<Claim>),
    Map(Vec<(String, Claim)>),
}

/// A group's token: key and compiled claims.
#[derive(Clone, Serialize)]
pub struct TokenPlan {
    /// The algorithm.
    pub alg: String,
    /// The key as written (`${VAR}`) or `key_file`'s path: never the key.
    pub key_from: String,
    /// Claims as written.
    pub claims: toml::Table,
    #[serde(skip)]
    key: Arc<EncodingKey>,
    #[serde(skip)]
    algorithm: Algorithm,
    #[serde(skip)]
    compiled: Arc<Vec<(String, Claim)>>,
}

impl std::fmt::Debug for TokenPlan {
    // By hand: the key must not reach a Debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPlan")
            .field("alg", &self.alg)
            .field("key_from", &self.key_from)
            .finish_non_exhaustive()
    }
}

/// What went wrong planning a token: a message, or a template error in
/// the claim named.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A bad algorithm, key or claim value.
    #[error("{0}")]
    Bad(String),
    /// A claim template with an unknown placeholder.
    #[error("{placeholder}: {message}", placeholder = .0.placeholder, message = .0.message)]
    Template(Unknown),
}

impl TokenPlan {
    /// Checks and compiles `spec`; `dir` is the scenario file's folder.
    pub fn new(spec: &TokenSpec, dir: &Path, names: &Names<'_>) -> Result<TokenPlan, TokenError> {
        let bad = |m: String| TokenError::Bad(m);
        let algorithm = match spec.alg.as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            other => return Err(bad(format!("alg {other:?}: write \"HS256\" or \"RS256\""))),
        };
        let (bytes, key_from) = match (&spec.key, &spec.key_file) {
            (Some(k), None) => {
                let value = crate::secrets::expand_env(k).map_err(|m| bad(format!("key: {m}")))?;
                // A key written in the file is as secret as one from the
                // environment.
                crate::secrets::register_as("{token.key}", &value);
                (value.into_bytes(), k.clone())
            }
            (None, Some(f)) => {
                let path = dir.join(f);
                let bytes = std::fs::read(&path)
                    .map_err(|e| bad(format!("key_file: cannot read {}: {e}", path.display())))?;
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    crate::secrets::register_as("{token.key_file}", text.trim());
                }
                (bytes, format!("key_file {f}"))
            }
            _ => return Err(bad("give exactly one of `key` and `key_file`".into())),
        };
        let key = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_der(
                &rsa_der(&bytes)
                    .map_err(|m| bad(format!("RS256 needs an RSA private key in PEM: {m}")))?,
            ),
            _ => EncodingKey::from_secret(&bytes)
                .map_err(|e| bad(format!("the HS256 key is not usable (empty?): {e}")))?,
        };
        let mut compiled = Vec::with_capacity(spec.claims.len());
        for (name, value) in &spec.claims {
            let time = matches!(name.as_str(), "exp" | "nbf" | "iat");
            compiled.push((
                name.clone(),
                claim(value, time, names).map_err(|e| match e {
                    ClaimError::Bad(m) => bad(format!("claims.{name}: {m}")),
                    ClaimError::Template(u) => TokenError::Template(u),
                })?,
            ));
        }
        Ok(TokenPlan {
            alg: spec.alg.clone(),
            key_from,
            claims: spec.claims.clone(),
            key: Arc::new(key),
            algorithm,
            compiled: Arc::new(compiled),
        })
    }

    /// Signs one client's token, `now_s` being the UNIX time in seconds.
    ///
    /// Errors: a secret in a claim that is not set, or a signing failure.
    pub fn sign(&self, v: &Vars<'_>, now_s: i64) -> Result<String, String> {
        let mut claims = serde_json::Map::new();
        for (name, c) in self.compiled.iter() {
            claims.insert(name.clone(), render(c, v, now_s)?);
        }
        jsonwebtoken::encode(
            &Header::new(self.algorithm),
            &serde_json::Value::Object(claims),
            &self.key,
        )
        .map_err(|e| format!("signing the token: {e}"))
    }
}

enum ClaimError {
    Bad(String),
    Template(Unknown),
}

fn claim(v: &toml::Value, time: bool, names: &Names<'_>) -> Result<Claim, ClaimError> {
    Ok(match v {
        toml::Value::String(s) if time => Claim::Time(relative(s).ok_or_else(|| {
            ClaimError::Bad(format!(
                "{s:?}: write a time relative to signing, e.g. \"+1h\", \"-30s\" or \"now\" (or a number)"
            ))
        })?),
        toml::Value::String(s) => Claim::Text(compile(s, names).map_err(ClaimError::Template)?),
        toml::Value::Integer(i) => Claim::Plain((*i).into()),
        toml::Value::Float(f) => Claim::Plain(serde_json::json!(f)),
        toml::Value::Boolean(b) => Claim::Plain((*b).into()),
        toml::Value::Datetime(d) => Claim::Plain(d.to_string().into()),
        toml::Value::Array(a) => Claim::List(
            a.iter()
                .map(|x| claim(x, false, names))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Claim::Map(
            t.iter()
                .map(|(k, x)| Ok((k.clone(), claim(x, false, names)?)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// An RSA private key in PEM (PKCS#1 `RSA PRIVATE KEY` or PKCS#8
/// `PRIVATE KEY`, RFC 7468) as the PKCS#1 DER jsonwebtoken signs with.
fn rsa_der(pem: &[u8]) -> Result<Vec<u8>, String> {
    use base64::Engine;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let text = std::str::from_utf8(pem).map_err(|_| "the file is not text".to_string())?;
    let begin = text
        .find("-----BEGIN ")
        .ok_or_else(|| "no `-----BEGIN` line".to_string())?;
    let rest = &text[begin + 11..];
    let label_end = rest.find("-----").ok_or("a broken BEGIN line")?;
    let label = &rest[..label_end];
    let body = &rest[label_end + 5..];
    let end = body.find("-----END ").ok_or("no `-----END` line")?;
    let b64: String = body[..end].split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("bad base64 ({e})"))?;
    match label {
        "RSA PRIVATE KEY" => Ok(der),
        "PRIVATE KEY" => rsa::PrivateKey::from_pkcs8_der(&der)
            .map_err(|e| format!("not an RSA PKCS#8 key ({e})"))?
            .to_pkcs1_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| format!("cannot re-encode the key ({e})")),
        other => Err(format!("a {other:?}, not a private key")),
    }
}

/// `"+1h"`, `"-30s"`, `"now"` as seconds from now.
fn relative(s: &str) -> Option<i64> {
    let s = s.trim();
    if s == "now" {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let d = humantime::parse_duration(rest.trim()).ok()?;
    Some(sign * i64::try_from(d.as_secs()).ok()?)
}

fn render(c: &Claim, v: &Vars<'_>, now_s: i64) -> Result<serde_json::Value, String> {
    Ok(match c {
        Claim::Text(t) => t.render_once(v)?.into(),
        Claim::Time(off) => (now_s + off).into(),
        Claim::Plain(p) => p.clone(),
        Claim::List(l) => l
            .iter()
            .map(|x| render(x, v, now_s))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        Claim::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), render(x, v, now_s)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Who;

    #[test]
    fn hs256_tokens_carry_rendered_claims_and_verify() {
        let spec: TokenSpec = toml::from_str(
            r#"alg = "HS256"
key = "unit-test-hmac-key-0123456789"
claims = { sub = "user-{client}", channels = ["{channel}"], exp = "+1h", admin = false }"#,
        )
        .unwrap();
        let plan = TokenPlan::new(&spec, Path::new("."), &Names::default()).unwrap();
        let who = Who {
            client: 41,
            ..Who::default()
        };
        let v = Vars {
            channel: "room-3",
            who: &who,
        };
        let token = plan.sign(&v, 1_000_000).unwrap();
        let mut check = jsonwebtoken::Validation::new(Algorithm::HS256);
        check.validate_exp = false;
        let got = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"unit-test-hmac-key-0123456789").unwrap(),
            &check,
        )
        .unwrap()
        .claims;
        assert_eq!(
            got,
            serde_json::json!({"sub":"user-41","channels":["room-3"],"exp":1_003_600,"admin":false})
        );
        assert!(matches!(
            TokenPlan::new(
                &TokenSpec {
                    alg: "HS999".into(),
                    ..spec.clone()
                },
                Path::new("."),
                &Names::default()
            ),
            Err(TokenError::Bad(_))
        ));
        assert_eq!(relative("-30s"), Some(-30));
        assert_eq!(relative("1h"), None);
    }
}
