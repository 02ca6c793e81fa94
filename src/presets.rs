//! Profiles of real-time protocols, as data: each is a TOML file under
//! `scenarios/profiles/` (readable, and a starting point to copy), built
//! into the binary so `--profile NAME` and `[profile] base = "NAME"` find it.

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

/// The TOML of data preset `name` (`Profile::preset` parses it).
pub fn text(name: &str) -> Option<&'static str> {
    DATA.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
