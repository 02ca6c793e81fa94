//! The module graph has no import cycle (the layers of the `lib.rs`
//! architecture map): `scripts/modgraph.py` reads every `use crate::…`,
//! `crate::…` path and `super::` import outside tests and finds strongly
//! connected groups.

use std::process::Command;

#[test]
fn the_module_graph_has_no_import_cycle() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = match Command::new("python3")
        .arg(format!("{root}/scripts/modgraph.py"))
        .arg(format!("{root}/src"))
        .arg("metrics")
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: python3 not found ({e})");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("strongly connected groups (import cycles): 0"),
        "an import cycle between top-level modules:\n{text}"
    );
}
