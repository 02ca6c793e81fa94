//! Profiles of real-time protocols, as data: each is a TOML file under
//! `scenarios/profiles/` (readable, and a starting point to copy), built
//! into the binary so `--profile NAME` and `[profile] base = "NAME"` find it.

use crate::profile::Profile;

/// Name and TOML of every data preset.
pub const DATA: &[(&str, &str)] = &[
    (
        "graphql-ws",
        include_str!("../scenarios/profiles/graphql-ws.toml"),
    ),
    (
        "actioncable",
        include_str!("../scenarios/profiles/actioncable.toml"),
    ),
    (
        "phoenix",
        include_str!("../scenarios/profiles/phoenix.toml"),
    ),
    (
        "centrifugo",
        include_str!("../scenarios/profiles/centrifugo.toml"),
    ),
    ("pusher", include_str!("../scenarios/profiles/pusher.toml")),
];

/// The data preset `name`, parsed.
pub fn get(name: &str) -> Option<Profile> {
    let (_, text) = DATA.iter().find(|(n, _)| *n == name)?;
    // The files are checked by the tests below; a broken one is a bug.
    toml::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_preset_parses_and_checks() {
        for (name, text) in DATA {
            let p: Profile = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(p.name, *name);
            p.check().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(p.websocket.is_some(), "{name}");
            assert!(crate::profile::PRESETS.contains(name), "{name}");
        }
    }
}
