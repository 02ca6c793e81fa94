//! `report.html`: one self-contained page (inline CSS, inline SVG, a few
//! lines of inline script to sort tables; nothing loaded from the network).
//! Every text taken from a run folder goes through [`escape`].

use std::fmt::Write as _;

use super::charts::Chart;
use super::format;
use crate::fault::ErrorKind;
use crate::folder::columns::{self, Column};
use crate::folder::read::{scenario_name, RunData};
use crate::folder::summary::SummaryRow;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#222;margin:0 auto;max-width:1200px;padding:1.5em}
h1{font-size:1.6em;margin:.2em 0}h2{margin-top:2em;border-bottom:1px solid #ddd}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1.2em}dt{color:#666}dd{margin:0}
table{border-collapse:collapse;margin:.8em 0;font-variant-numeric:tabular-nums}
th,td{padding:.3em .6em;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f4f4f4;cursor:pointer;user-select:none;position:sticky;top:0}
th[data-dir=asc]::after{content:' \\25B2'}th[data-dir=desc]::after{content:' \\25BC'}
td.t,th.t{text-align:left}.scroll{overflow-x:auto}
figure{margin:1.5em 0}figure svg{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;max-width:60em}.warn{color:#a33}.ok{color:#276b27}.muted{color:#777}
";

/// Sorts a table by the clicked header: numbers by their `data-v`, empty
/// cells last, text otherwise.
const SCRIPT: &str = "
document.querySelectorAll('table.sortable th').forEach(function(th){th.addEventListener('click',function(){
var row=th.parentNode,t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(row.children,th);
var asc=th.getAttribute('data-dir')!=='asc';row.querySelectorAll('th').forEach(function(h){h.removeAttribute('data-dir')});
th.setAttribute('data-dir',asc?'asc':'desc');
function key(r){var c=r.cells[i];return c?(c.getAttribute('data-v')!==null?c.getAttribute('data-v'):c.textContent):''}
Array.prototype.slice.call(b.rows).sort(function(r1,r2){var a=key(r1),c=key(r2);
if(a===''||c==='')return a===c?0:(a===''?1:-1);var x=parseFloat(a),y=parseFloat(c);
var d=(isNaN(x)||isNaN(y))?a.localeCompare(c):x-y;return asc?d:-d}).forEach(function(r){b.appendChild(r)})})});
";

/// Renders the whole page.
pub fn page(runs: &[RunData], charts: &[Chart]) -> String {
    let mut scenarios: Vec<&str> = runs.iter().map(|r| r.scenario()).collect();
    scenarios.dedup();
    let title = format!("stampede report: {}", scenarios.join(", "));
    let mut h =
        String::with_capacity(64 * 1024 + charts.iter().map(|c| c.svg.len()).sum::<usize>());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<p class=\"muted\">Written by stampede {} from {} run folder{}. Contents: \
         <a href=\"#runs\">runs</a> · <a href=\"#summary\">summary</a> · \
         <a href=\"#charts\">charts</a> · <a href=\"#errors\">errors</a>.</p>",
        escape(env!("CARGO_PKG_VERSION")),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    );
    runs_section(&mut h, runs);
    summary_section(&mut h, runs);
    if runs.iter().any(|r| !r.sweep.is_empty()) {
        sweep_section(&mut h, runs);
    }
    if runs.iter().any(|r| !r.rooms.is_empty()) {
        rooms_section(&mut h, runs);
    }
    charts_section(&mut h, charts);
    errors_section(&mut h, runs);
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
    h
}

fn runs_section(h: &mut String, runs: &[RunData]) {
    h.push_str("<h2 id=\"runs\">Runs</h2>\n");
    for r in runs {
        let i = &r.info;
        let _ = writeln!(h, "<h3>{}</h3>\n<dl>", escape(&r.label));
        let mut item = |k: &str, v: String| {
            let _ = writeln!(h, "<dt>{}</dt><dd>{}</dd>", escape(k), v);
        };
        item("scenario", escape(scenario_name(i)));
        if let Some(d) = i.plan.get("description").and_then(|v| v.as_str()) {
            item("description", escape(d));
        }
        item("scenario file", escape(&i.scenario_file));
        item("folder", escape(&r.dir.display().to_string()));
        item("stampede version", escape(&i.stampede_version));
        item(
            "host",
            escape(&format!(
                "{}, {} CPUs, {}, open-file limit {}",
                i.host.hostname,
                i.host.cpus,
                i.host.os,
                format::count(i.host.nofile_limit)
            )),
        );
        item(
            "target",
            escape(&format!(
                "{}{}",
                i.target.url,
                if i.target.builtin { " (built-in)" } else { "" }
            )),
        );
        item("started", escape(&i.started_at));
        item(
            "ended",
            escape(i.ended_at.as_deref().unwrap_or("not recorded")),
        );
        item(
            "duration",
            i.duration_s.map_or("n/a".into(), format::duration_s),
        );
        let status_class = if i.status == "completed" && !i.partial {
            "ok"
        } else {
            "warn"
        };
        item(
            "status",
            format!(
                "<span class=\"{status_class}\">{}</span>{}",
                escape(&i.status),
                i.exit_code
                    .map_or(String::new(), |c| format!(" (exit code {c})"))
            ),
        );
        item(
            "partial",
            if i.partial {
                format!(
                    "<span class=\"warn\">yes: {}</span>",
                    escape(i.partial_reason.as_deref().unwrap_or("no reason recorded"))
                )
            } else {
                "no".into()
            },
        );
        if let Some(n) = i.repeats {
            item(
                "repeats",
                format!("{n} (summary values are per-column medians)"),
            );
        }
        h.push_str("</dl>\n");
        if i.warnings.is_empty() {
            h.push_str("<p class=\"ok\">No warnings.</p>\n");
        } else {
            h.push_str("<p>Warnings:</p><ul class=\"warn\">\n");
            for w in &i.warnings {
                let _ = writeln!(h, "<li>{}</li>", escape(w));
            }
            h.push_str("</ul>\n");
        }
        if !i.thresholds.is_empty() {
            h.push_str(
                "<div class=\"scroll\"><table class=\"sortable\"><thead><tr>\
                 <th class=\"t\">threshold</th><th class=\"t\">group</th><th>value</th>\
                 <th class=\"t\">limit</th><th class=\"t\">result</th></tr></thead><tbody>\n",
            );
            for t in &i.thresholds {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td>{}<td class=\"t\">{}</td>\
                     <td class=\"t {}\">{}</td></tr>",
                    escape(&t.threshold),
                    escape(&t.group),
                    num_cell(t.value, format::num),
                    escape(&t.limit),
                    if t.passed { "ok" } else { "warn" },
                    if t.passed { "pass" } else { "FAIL" }
                );
            }
            h.push_str("</tbody></table></div>\n");
        }
    }
}

/// A right-aligned numeric cell: formatted for people, sorted by the raw
/// value; empty for "not applicable".
fn num_cell(v: Option<f64>, f: fn(f64) -> String) -> String {
    match v {
        Some(v) if v.is_finite() => format!("<td data-v=\"{v}\">{}</td>", escape(&f(v))),
        _ => "<td data-v=\"\" class=\"muted\">–</td>".into(),
    }
}

fn text_cell(s: &str) -> String {
    format!("<td class=\"t\">{}</td>", escape(s))
}

/// The columns people compare first (those the registry gives a main-table
/// label), each formatted by its unit; every column is in the full table.
fn main_columns() -> impl Iterator<Item = (&'static str, &'static Column, fn(f64) -> String)> {
    columns::all().iter().filter_map(|c| {
        let f: fn(f64) -> String = match c.unit() {
            "count" | "flag" => count,
            "bytes" => format::bytes,
            "fraction" => format::percent,
            _ => format::num,
        };
        Some((c.main_label()?, c, f))
    })
}

fn count(v: f64) -> String {
    format::thousands(v, 0)
}

/// Rows of every run, the same group of different runs side by side.
fn ordered_rows(runs: &[RunData]) -> Vec<(&RunData, &SummaryRow)> {
    let mut rows: Vec<(usize, usize, &RunData, &SummaryRow)> = Vec::new();
    let mut group_order: Vec<&str> = Vec::new();
    for (ri, run) in runs.iter().enumerate() {
        for row in &run.rows {
            let gi = match group_order.iter().position(|g| *g == row.group) {
                Some(i) => i,
                None => {
                    group_order.push(&row.group);
                    group_order.len() - 1
                }
            };
            rows.push((gi, ri, run, row));
        }
    }
    rows.sort_by_key(|(gi, ri, _, _)| (*gi, *ri));
    rows.into_iter()
        .map(|(_, _, run, row)| (run, row))
        .collect()
}

fn summary_section(h: &mut String, runs: &[RunData]) {
    let multi = runs.len() > 1;
    h.push_str("<h2 id=\"summary\">Summary</h2>\n");
    let _ = writeln!(
        h,
        "<p>One row per client group{}, from <code>summary.csv</code>: percentiles over the \
         measured window; empty cells (–) mean not applicable or no samples. Click a header \
         to sort.</p>",
        if multi {
            " and run (the same group of each run side by side)"
        } else {
            ""
        }
    );
    h.push_str("<div class=\"scroll\"><table class=\"sortable\" id=\"summary-table\"><thead><tr>");
    if multi {
        h.push_str("<th class=\"t\">run</th>");
    }
    h.push_str("<th class=\"t\">group</th><th class=\"t\">transport</th>");
    for (name, _, _) in main_columns() {
        let _ = write!(h, "<th>{}</th>", escape(name));
    }
    h.push_str("</tr></thead><tbody>\n");
    for (run, row) in ordered_rows(runs) {
        h.push_str("<tr>");
        if multi {
            h.push_str(&text_cell(&run.label));
        }
        h.push_str(&text_cell(&row.group));
        h.push_str(&text_cell(&row.transport));
        for (_, c, f) in main_columns() {
            h.push_str(&num_cell(c.value(row), f));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table></div>\n");
    full_table(h, runs);
}

/// Every `summary.csv` column as written, numbers grouped for reading.
fn full_table(h: &mut String, runs: &[RunData]) {
    let multi = runs.len() > 1;
    let mut header: Vec<String> = Vec::new();
    let mut body = String::new();
    for (run, row) in ordered_rows(runs) {
        let Some((names, values)) = csv_fields(row) else {
            continue;
        };
        if header.is_empty() {
            header = names;
        }
        body.push_str("<tr>");
        if multi {
            body.push_str(&text_cell(&run.label));
        }
        for v in values {
            match v.parse::<f64>() {
                Ok(n) if n.is_finite() => {
                    let shown = if v.contains('.') {
                        format::thousands(n, v.len() - v.find('.').unwrap_or(v.len()) - 1)
                    } else {
                        format::thousands(n, 0)
                    };
                    let _ = write!(body, "<td data-v=\"{n}\">{}</td>", escape(&shown));
                }
                _ if v.is_empty() => body.push_str("<td data-v=\"\" class=\"muted\">–</td>"),
                _ => body.push_str(&text_cell(&v)),
            }
        }
        body.push_str("</tr>\n");
    }
    h.push_str(
        "<details><summary>All summary.csv columns</summary>\
         <div class=\"scroll\"><table class=\"sortable\"><thead><tr>",
    );
    if multi {
        h.push_str("<th class=\"t\">run</th>");
    }
    for name in &header {
        let _ = write!(h, "<th>{}</th>", escape(name));
    }
    let _ = write!(
        h,
        "</tr></thead><tbody>\n{body}</tbody></table></div></details>\n"
    );
}

/// Column names and raw values of a row exactly as `summary.csv` has them.
fn csv_fields(row: &SummaryRow) -> Option<(Vec<String>, Vec<String>)> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(row).ok()?;
    let bytes = w.into_inner().ok()?;
    let mut r = csv::Reader::from_reader(bytes.as_slice());
    let names = r.headers().ok()?.iter().map(String::from).collect();
    let values = r.records().next()?.ok()?.iter().map(String::from).collect();
    Some((names, values))
}

/// `sweep.csv` as a table: one row per value per group.
fn sweep_section(h: &mut String, runs: &[RunData]) {
    let multi = runs.len() > 1;
    h.push_str(
        "<h2 id=\"sweep-table\">Sweep</h2>\n<p>From <code>sweep.csv</code>: each group at each \
         value of the swept parameter (its summary row is <code>group@value</code>). Charts: \
         <a href=\"#sweep\">latency</a>, <a href=\"#sweep-cost\">cost</a>.</p>\n\
         <div class=\"scroll\"><table class=\"sortable\"><thead><tr>",
    );
    if multi {
        h.push_str("<th class=\"t\">run</th>");
    }
    h.push_str(
        "<th class=\"t\">parameter</th><th class=\"t\">value</th><th class=\"t\">group</th>\
         <th>delivery p50 (ms)</th><th>p99 (ms)</th><th>requests / delivery</th>\
         <th>bytes / delivery</th><th>target CPU (s)</th><th>target CPU ms / 1,000 deliveries</th>\
         <th>lost</th><th>errors</th></tr></thead><tbody>\n",
    );
    for run in runs {
        for r in &run.sweep {
            h.push_str("<tr>");
            if multi {
                h.push_str(&text_cell(&run.label));
            }
            h.push_str(&text_cell(&r.parameter));
            // Sorted by the number behind the value, where there is one.
            match r.value_num {
                Some(n) => {
                    let _ = write!(
                        h,
                        "<td class=\"t\" data-v=\"{n}\">{}</td>",
                        escape(&r.value)
                    );
                }
                None => h.push_str(&text_cell(&r.value)),
            }
            h.push_str(&text_cell(&r.group));
            h.push_str(&num_cell(r.delivery_p50_ms, format::num));
            h.push_str(&num_cell(r.delivery_p99_ms, format::num));
            h.push_str(&num_cell(r.requests_per_delivery, format::num));
            h.push_str(&num_cell(r.bytes_per_delivery, format::bytes));
            h.push_str(&num_cell(r.target_cpu_s, format::num));
            h.push_str(&num_cell(r.target_cpu_ms_per_1k_deliveries, format::num));
            h.push_str(&num_cell(r.lost.map(|v| v as f64), count));
            h.push_str(&num_cell(Some(r.errors as f64), count));
            h.push_str("</tr>\n");
        }
    }
    h.push_str("</tbody></table></div>\n");
}

/// `rooms.csv` as a table: one row per group and room-size bucket.
fn rooms_section(h: &mut String, runs: &[RunData]) {
    let multi = runs.len() > 1;
    h.push_str(
        "<h2 id=\"rooms-table\">Rooms</h2>\n<p>From <code>rooms.csv</code>: each group's members \
         by the size of their room (planned members, power-of-two buckets). Chart: \
         <a href=\"#rooms\">latency by room size</a>.</p>\n\
         <div class=\"scroll\"><table class=\"sortable\"><thead><tr>",
    );
    if multi {
        h.push_str("<th class=\"t\">run</th>");
    }
    h.push_str(
        "<th class=\"t\">group</th><th>room size</th><th>rooms</th><th>members</th>\
         <th>expected</th><th>delivered</th><th>lost</th><th>delivery p50 (ms)</th>\
         <th>p90 (ms)</th><th>p99 (ms)</th><th>max (ms)</th></tr></thead><tbody>\n",
    );
    for run in runs {
        for r in &run.rooms {
            h.push_str("<tr>");
            if multi {
                h.push_str(&text_cell(&run.label));
            }
            h.push_str(&text_cell(&r.group));
            // Sorted by the smallest room of the bucket.
            let _ = write!(
                h,
                "<td data-v=\"{}\">{}</td>",
                r.room_size_min,
                escape(&r.room_size)
            );
            for v in [r.rooms, r.members, r.expected, r.delivered, r.lost] {
                h.push_str(&num_cell(Some(v as f64), count));
            }
            for v in [
                r.delivery_p50_ms,
                r.delivery_p90_ms,
                r.delivery_p99_ms,
                r.delivery_max_ms,
            ] {
                h.push_str(&num_cell(v, format::num));
            }
            h.push_str("</tr>\n");
        }
    }
    h.push_str("</tbody></table></div>\n");
}

fn charts_section(h: &mut String, charts: &[Chart]) {
    h.push_str("<h2 id=\"charts\">Charts</h2>\n");
    for c in charts {
        let _ = writeln!(
            h,
            "<figure id=\"{}\">{}<figcaption><b>{}</b>. {} \
             (<a href=\"charts/{}\">charts/{}</a>)</figcaption></figure>",
            escape(c.file.trim_end_matches(".svg")),
            strip_xml_declaration(&c.svg),
            escape(&c.title),
            escape(&c.note),
            escape(&c.file),
            escape(&c.file)
        );
    }
}

/// An XML declaration is not allowed inside HTML.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.trim_start().strip_prefix("<?xml") {
        Some(rest) => rest.split_once("?>").map_or(svg, |(_, s)| s),
        None => svg,
    }
}

fn errors_section(h: &mut String, runs: &[RunData]) {
    let multi = runs.len() > 1;
    h.push_str("<h2 id=\"errors\">Errors by kind</h2>\n");
    let rows: Vec<_> = ordered_rows(runs)
        .into_iter()
        .filter(|(_, r)| r.errors > 0)
        .collect();
    if rows.is_empty() {
        h.push_str("<p class=\"ok\">No failed exchanges in any group.</p>\n");
    } else {
        h.push_str("<div class=\"scroll\"><table class=\"sortable\"><thead><tr>");
        if multi {
            h.push_str("<th class=\"t\">run</th>");
        }
        h.push_str("<th class=\"t\">group</th><th>errors</th><th>error rate</th>");
        for k in ErrorKind::ALL {
            let _ = write!(h, "<th>{}</th>", k.label());
        }
        h.push_str("</tr></thead><tbody>\n");
        for (run, r) in rows {
            h.push_str("<tr>");
            if multi {
                h.push_str(&text_cell(&run.label));
            }
            h.push_str(&text_cell(&r.group));
            h.push_str(&num_cell(Some(r.errors as f64), count));
            h.push_str(&num_cell(Some(r.error_rate), format::percent));
            for n in r.errors_by_kind {
                h.push_str(&num_cell(Some(n as f64), count));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table></div>\n");
    }
    let examples: Vec<_> = runs
        .iter()
        .flat_map(|run| run.info.errors.iter().map(move |e| (run, e)))
        .collect();
    if !examples.is_empty() {
        h.push_str(
            "<p>First error of each kind per group (from <code>run.json</code>):</p>\
             <div class=\"scroll\"><table class=\"sortable\"><thead><tr>",
        );
        if multi {
            h.push_str("<th class=\"t\">run</th>");
        }
        h.push_str(
            "<th class=\"t\">group</th><th class=\"t\">kind</th><th class=\"t\">message</th>\
             </tr></thead><tbody>\n",
        );
        for (run, e) in examples {
            h.push_str("<tr>");
            if multi {
                h.push_str(&text_cell(&run.label));
            }
            h.push_str(&text_cell(&e.group));
            h.push_str(&text_cell(&e.kind));
            h.push_str(&text_cell(&e.detail));
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody></table></div>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn strips_the_xml_declaration_only() {
        assert_eq!(
            strip_xml_declaration("<?xml version=\"1.0\"?>\n<svg/>"),
            "\n<svg/>"
        );
        assert_eq!(strip_xml_declaration("<svg/>"), "<svg/>");
    }

    #[test]
    fn csv_fields_follow_summary_columns() {
        let (names, values) = csv_fields(&SummaryRow::example()).expect("fields");
        assert_eq!(names.first().map(String::as_str), Some("group"));
        assert_eq!(names.len(), values.len());
    }
}
