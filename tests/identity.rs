//! Every client its own identity: per-client JWTs verified by a server that
//! accepts each token on one connection only, CSV rows taken by client
//! number (the same in one process and in shards), and template errors
//! that name the template's place.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use support::{exe, TempDir};

const KEY: &str = "hs256-test-key-5d1c0b9a8f7e6d5c4b3a";

/// What the token server saw.
#[derive(Default)]
struct Seen {
    /// Valid token -> the connection that presented it first.
    tokens: BTreeMap<String, usize>,
    /// `sub` claims of valid tokens.
    subs: BTreeSet<String>,
    /// `room` claims, by `sub`.
    rooms: BTreeMap<String, String>,
    /// `(client, user)` query pairs of accepted requests.
    pairs: BTreeSet<(String, String)>,
    /// Requests refused (bad signature, reused token, no token).
    refused: usize,
}

/// An HTTP/1.1 server that accepts a request only with
/// `Authorization: Bearer <JWT>` signed by `KEY` (HS256), and a token only
/// on the connection that presented it first. Threads end with the test.
fn token_server() -> (String, Arc<Mutex<Seen>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for (conn_id, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { return };
            let seen = shared.clone();
            std::thread::spawn(move || serve(conn, conn_id, &seen));
        }
    });
    (url, seen)
}

fn serve(conn: std::net::TcpStream, conn_id: usize, seen: &Mutex<Seen>) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let target = head
            .first()
            .and_then(|l| l.split(' ').nth(1))
            .unwrap_or_default()
            .to_string();
        let bearer = head.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case("authorization")
                .then(|| v.trim().strip_prefix("Bearer ").map(str::to_string))?
        });
        let ok = bearer.is_some_and(|t| accept(&t, conn_id, &target, seen));
        let answer = if ok {
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        } else {
            seen.lock().unwrap().refused += 1;
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
        };
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn accept(token: &str, conn_id: usize, target: &str, seen: &Mutex<Seen>) -> bool {
    let key = jsonwebtoken::DecodingKey::from_secret(KEY.as_bytes()).unwrap();
    let check = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    let Ok(data) = jsonwebtoken::decode::<serde_json::Value>(token, &key, &check) else {
        return false;
    };
    let mut s = seen.lock().unwrap();
    let first = *s.tokens.entry(token.to_string()).or_insert(conn_id);
    if first != conn_id {
        return false;
    }
    let sub = data.claims["sub"].as_str().unwrap_or_default().to_string();
    let room = data.claims["room"].as_str().unwrap_or_default().to_string();
    s.subs.insert(sub.clone());
    s.rooms.insert(sub, room);
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_string()
    };
    s.pairs.insert((param("c"), param("u")));
    true
}

const CLIENTS: u64 = 12;

fn write_scenario(dir: &Path, rows: u64) -> std::path::PathBuf {
    let mut csv = String::from("user,room,password\n");
    for i in 0..rows {
        csv.push_str(&format!("u{i},room-{},pw-secret-{i:04}-xyz\n", i % 3));
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();
    let scenario = dir.join("s.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"name = "identity"
duration = "1s"

[[data]]
file = "users.csv"
strategy = "unique"
secret = ["password"]

[[groups]]
transport = "request"
clients = {CLIENTS}
rate = 48
url = "/hello?c={{client}}&u={{data.user}}&p={{data.password}}"
headers = {{ Authorization = "Bearer {{token}}" }}
token = {{ alg = "HS256", key = "${{STAMPEDE_JWT_TEST_KEY}}", claims = {{ sub = "user-{{client}}", room = "{{data.room}}", exp = "+1h" }} }}
"#
        ),
    )
    .unwrap();
    scenario
}

fn run(scenario: &Path, url: &str, out_dir: &Path, extra: &[&str]) -> (String, String) {
    let out = Command::new(exe())
        .arg("run")
        .arg(scenario)
        .args(["--target", url, "--out"])
        .arg(out_dir)
        .args(extra)
        .env("STAMPEDE_JWT_TEST_KEY", KEY)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    (stdout, stderr)
}

/// Every file under `dir`, as text.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all.extend(files(&p));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            all.push((p, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    all
}

#[test]
fn every_client_signs_its_own_token_and_the_key_is_never_written() {
    let (url, seen) = token_server();
    let dir = TempDir::new("identity-jwt");
    let scenario = write_scenario(dir.path(), CLIENTS);
    let out_dir = dir.path().join("run");
    let (stdout, stderr) = run(&scenario, &url, &out_dir, &[]);

    let s = seen.lock().unwrap();
    assert_eq!(s.refused, 0, "every request carried its own valid token");
    assert_eq!(
        s.tokens.len() as u64,
        CLIENTS,
        "one distinct token per client"
    );
    let subs: BTreeSet<String> = (0..CLIENTS).map(|c| format!("user-{c}")).collect();
    assert_eq!(s.subs, subs);
    // `unique`: client c has row c, so its room is row c's.
    for c in 0..CLIENTS {
        assert_eq!(s.rooms[&format!("user-{c}")], format!("room-{}", c % 3));
    }
    let pairs: BTreeSet<(String, String)> = (0..CLIENTS)
        .map(|c| (c.to_string(), format!("u{c}")))
        .collect();
    assert_eq!(s.pairs, pairs);

    let written = files(&out_dir);
    assert!(written.iter().any(|(p, _)| p.ends_with("run.json")));
    for (path, text) in written
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .chain([
            (Path::new("stdout"), stdout.as_str()),
            (Path::new("stderr"), stderr.as_str()),
        ])
    {
        assert!(!text.contains(KEY), "the key in {}", path.display());
        for token in s.tokens.keys() {
            assert!(
                !text.contains(token.as_str()),
                "a token in {}",
                path.display()
            );
        }
        assert!(
            !text.contains("pw-secret-"),
            "a secret column in {}",
            path.display()
        );
    }
}

#[test]
fn shards_give_each_client_the_row_of_the_one_process_run() {
    let dir = TempDir::new("identity-shards");
    let scenario = write_scenario(dir.path(), CLIENTS);
    let mut mapping = Vec::new();
    for extra in [&[][..], &["--processes", "3"][..]] {
        let (url, seen) = token_server();
        run(
            &scenario,
            &url,
            &dir.path().join(format!("run{}", extra.len())),
            extra,
        );
        let s = seen.lock().unwrap();
        assert_eq!(s.refused, 0);
        mapping.push((s.pairs.clone(), s.subs.clone()));
    }
    assert_eq!(mapping[0].0.len() as u64, CLIENTS);
    assert_eq!(mapping[0], mapping[1]);
}

fn plan_error(dir: &Path, scenario: &str) -> String {
    let path = dir.join("bad.toml");
    std::fs::write(&path, scenario).unwrap();
    let result = stampede::scenario::load(&path, &[]).and_then(|(sc, src)| {
        stampede::plan::build(&sc, &src, &stampede::plan::Overrides::default())
    });
    match result {
        Ok(_) => panic!("accepted:\n{scenario}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

#[test]
fn template_and_feeder_errors_name_their_place() {
    let dir = TempDir::new("identity-errors");
    std::fs::write(dir.path().join("users.csv"), "user,room\nu0,r0\nu1,r1\n").unwrap();
    let at = |s: &str| format!("{}:{s}", dir.path().join("bad.toml").display());
    let base = "name = \"x\"\nduration = \"1s\"\n[[data]]\nfile = \"users.csv\"\n";
    let group = "[[groups]]\ntransport = \"request\"\nclients = 2\nrate = 1\n";
    // A column the file does not have: the placeholder's own place.
    let e = plan_error(
        dir.path(),
        &format!("{base}{group}url = \"/a?r={{data.rooms}}\"\n"),
    );
    assert!(e.contains(&at("9:13")), "{e}");
    assert!(e.contains("rooms") && e.contains("user, room"), "{e}");
    // An unknown placeholder in a header.
    let e = plan_error(
        dir.path(),
        &format!("{base}{group}url = \"/a\"\nheaders = {{ X-Who = \"{{clinet}}\" }}\n"),
    );
    assert!(
        e.contains(&at("10:22")) && e.contains("unknown placeholder"),
        "{e}"
    );
    // `{token}` without a token.
    let e = plan_error(
        dir.path(),
        &format!("{base}{group}url = \"/a?t={{token}}\"\n"),
    );
    assert!(e.contains(&at("9:13")) && e.contains("token"), "{e}");
    // `unique` with fewer rows than clients: the strategy's line.
    let e = plan_error(
        dir.path(),
        &format!(
            "{base}strategy = \"unique\"\n{}url = \"/a\"\n",
            group.replace("clients = 2", "clients = 3")
        ),
    );
    assert!(
        e.contains(&at("5:12")) && e.contains("2 rows") && e.contains("3 clients"),
        "{e}"
    );
    // A missing file.
    let e = plan_error(
        dir.path(),
        &format!(
            "{}{group}url = \"/a\"\n",
            base.replace("users.csv", "nobody.csv")
        ),
    );
    assert!(e.contains(&at("4:8")) && e.contains("nobody.csv"), "{e}");
    // A bad token key.
    let e = plan_error(
        dir.path(),
        &format!("name = \"x\"\nduration = \"1s\"\n{group}url = \"/a\"\ntoken = {{ alg = \"RS256\", key = \"not a pem\" }}\n"),
    );
    assert!(e.contains(&at("8:9")) && e.contains("PEM"), "{e}");
}
