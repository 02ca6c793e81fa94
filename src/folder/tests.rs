//! Schema tests: the headers are a contract with every older run folder and
//! baseline, and the README's column table is generated from the registry.

use super::columns;
use super::summary::SummaryRow;
use super::timeseries;
use crate::fault::ErrorKind;

/// `summary.csv`'s header as released. A failure means a column was
/// renamed, dropped or moved: older baselines would read it as empty.
/// Added columns pass (and may be added here).
const SUMMARY_HEADER: &str = "group,transport,clients,published,expected,delivered,lost,\
duplicated,reordered,delivery_p50_ms,delivery_p90_ms,delivery_p99_ms,delivery_p999_ms,\
delivery_max_ms,first_event_p50_ms,connect_p50_ms,connect_p99_ms,subscribe_p50_ms,\
subscribe_p99_ms,tls_p50_ms,tls_p99_ms,request_p50_ms,request_p90_ms,request_p99_ms,\
request_p999_ms,request_max_ms,request_uncorrected_p50_ms,request_uncorrected_p99_ms,\
requests,requests_per_s,status_1xx,status_2xx,status_3xx,status_4xx,status_5xx,\
empty_responses,server_timeouts,requests_per_delivery,bytes_sent,bytes_received,\
bytes_per_delivery,deliveries_per_s,errors,error_rate,errors_refused,errors_reset,\
errors_timeout,errors_status,errors_protocol,errors_closed,errors_limit,\
errors_rate_limited,errors_tls,errors_other,reconnects,storm_reconnected,\
storm_reconnect_p50_ms,storm_reconnect_p99_ms,storm_reconnect_max_ms,storm_receiving,\
storm_all_receiving_s,latency_overflows,measured_s,client_cpu_s,client_rss_peak_mb,\
target_cpu_s,target_rss_peak_mb,target_connections_peak,target_rss_per_1k_conn_mb,\
target_cpu_ms_per_1k_deliveries,client_cpu_pct,loadgen_lag_p99_ms,publish_slip_p99_ms,\
loadgen_saturated";

/// `timeseries.csv`'s header, likewise.
const TIMESERIES_HEADER: &str = "unix_s,elapsed_s,interval_s,phase,group,transport,measured,\
connections,deliveries,deliveries_per_s,requests_per_s,delivery_p50_ms,delivery_p99_ms,\
delivery_max_ms,errors,errors_refused,errors_reset,errors_timeout,errors_status,\
errors_protocol,errors_closed,errors_limit,errors_rate_limited,errors_tls,errors_other,\
reconnects,bytes_sent_per_s,bytes_received_per_s,client_cpu_pct,target_cpu_pct,\
target_rss_mb,target_connections,loadgen_lag_ms,stage";

fn csv_of<T: serde::Serialize>(row: &T) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(row).unwrap();
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn read_back<T: serde::de::DeserializeOwned>(text: &str) -> T {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .next()
        .unwrap()
        .unwrap()
}

/// Every snapshot column is still in `header`, in the same order: new
/// columns (a new error kind, say) may come in between, none may go.
fn keeps_every_column(snapshot: &str, header: &str) {
    let mut current = header.split(',');
    for want in snapshot.split(',') {
        assert!(
            current.any(|c| c == want),
            "column {want:?} was renamed, dropped or moved: older run folders and \
             baselines would read it as empty\nheader: {header}"
        );
    }
}

#[test]
fn summary_header_snapshot() {
    let text = csv_of(&SummaryRow::default());
    let header = text.lines().next().unwrap();
    keeps_every_column(SUMMARY_HEADER, header);
    let names: Vec<&str> = columns::all().iter().map(|c| c.name()).collect();
    assert_eq!(names.join(","), header, "the registry is the file's header");
}

#[test]
fn timeseries_header_snapshot() {
    let text = csv_of(&timeseries::Row::default());
    keeps_every_column(TIMESERIES_HEADER, text.lines().next().unwrap());
}

#[test]
fn a_renamed_column_fails_the_snapshot() {
    let renamed = SUMMARY_HEADER.replace("delivery_p99_ms", "delivery_p99");
    let r = std::panic::catch_unwind(|| keeps_every_column(SUMMARY_HEADER, &renamed));
    assert!(r.is_err());
    let added = SUMMARY_HEADER.replace("errors_other", "errors_new,errors_other");
    keeps_every_column(SUMMARY_HEADER, &added);
}

/// Every column set through the registry reads back through serde: the
/// registry reaches every field, and the CSV round trip is exact.
#[test]
fn every_column_round_trips() {
    let mut row = SummaryRow {
        group: "g".into(),
        transport: "sse".into(),
        ..SummaryRow::default()
    };
    for (i, c) in columns::numeric().enumerate() {
        c.set(&mut row, i as f64 + if c.is_integral() { 1.0 } else { 0.5 });
    }
    for (i, c) in columns::numeric().enumerate() {
        let want = i as f64 + if c.is_integral() { 1.0 } else { 0.5 };
        assert_eq!(c.value(&row), Some(want), "{}", c.name());
    }
    let back: SummaryRow = read_back(&csv_of(&row));
    assert_eq!(back, row);
    let json: SummaryRow = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
    assert_eq!(json, row);
}

#[test]
fn empty_cells_and_missing_columns_read_as_empty() {
    let row: SummaryRow = read_back("group,lost,errors_tls,future_column\ng,,3,x\n");
    assert_eq!(row.group, "g");
    assert_eq!(row.lost, None);
    assert_eq!(row.errors_of(ErrorKind::Tls), 3);
    assert_eq!(row.clients, 0);
}

#[test]
fn missing_columns_are_named() {
    let dir = std::env::temp_dir().join(format!("stampede-folder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("summary.csv"),
        "group,transport,clients,delivery_p99_msec\ng,sse,1,5\n",
    )
    .unwrap();
    let (rows, missing) = super::summary::read_checked(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(rows[0].delivery_p99_ms, None);
    assert!(missing.contains(&"delivery_p99_ms"));
    assert!(!missing.contains(&"clients"));
}

#[test]
fn error_kinds_are_columns_in_order() {
    for (i, k) in ErrorKind::ALL.into_iter().enumerate() {
        assert_eq!(k.index(), i);
        assert_eq!(k.column(), format!("errors_{}", k.label()));
        let c = columns::find_numeric(k.column()).unwrap();
        assert_eq!(c.error_kind(), Some(k));
        assert!(!k.meaning().is_empty());
    }
}

#[test]
fn every_column_is_documented() {
    for c in columns::all() {
        assert!(!c.meaning().is_empty(), "{}", c.name());
        assert!(c.is_numeric() != c.unit().is_empty(), "{}", c.name());
    }
}

/// The README's `summary.csv` table is generated: run
/// `STAMPEDE_BLESS=1 cargo test --lib folder::tests` to rewrite it.
#[test]
fn readme_column_table_is_current() {
    readme_table_is_current("summary", "summary.rs", &columns::markdown_table());
    readme_table_is_current("rooms", "rooms.rs", &super::rooms::markdown_table());
}

/// The README's `<name>` column table, between its markers, is `table`.
fn readme_table_is_current(name: &str, source: &str, table: &str) {
    let begin = format!("<!-- {name}-columns:begin (generated from src/folder/{source}) -->\n");
    let end_marker = format!("<!-- {name}-columns:end -->");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme.find(&begin).expect("README has the begin marker") + begin.len();
    let end = readme.find(&end_marker).expect("README has the end marker");
    if std::env::var_os("STAMPEDE_BLESS").is_some() {
        let text = format!("{}{table}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, text).unwrap();
        return;
    }
    assert!(
        readme[start..end] == *table,
        "README.md's {name}.csv column table is stale: run \
         STAMPEDE_BLESS=1 cargo test --lib folder::tests::readme_column_table_is_current"
    );
}

/// `rooms.csv`'s header is its registry, and its rows round-trip.
#[test]
fn rooms_header_is_the_registry_and_rows_round_trip() {
    use super::rooms::{columns as room_columns, RoomsRow};
    let mut row = RoomsRow {
        group: "g".into(),
        transport: "websocket".into(),
        room_size: "4-7".into(),
        ..RoomsRow::default()
    };
    for (i, c) in room_columns()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_numeric())
    {
        c.set_number(&mut row, i as f64 + if c.is_integral() { 0.0 } else { 0.5 });
    }
    let text = csv_of(&row);
    let names: Vec<&str> = room_columns().iter().map(|c| c.name).collect();
    assert_eq!(text.lines().next().unwrap(), names.join(","));
    assert_eq!(read_back::<RoomsRow>(&text), row);
    assert_eq!(row.delivery_max_ms, Some(14.5));
    for c in room_columns() {
        assert!(c.info.is_some_and(|i| !i.meaning.is_empty()), "{}", c.name);
    }
}
