//! The `.hlog` files of shards: reading one back, and writing the merged
//! logs with every shard's intervals on one time base.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{folder_error, ShardData};
use crate::error::{Error, Result};
use crate::folder::hlog::{self, HlogWriter, RawInterval};
use crate::folder::hlog_name;
use crate::metrics::summary::SummaryRow;
use crate::metrics::Latency;

/// A log's intervals; `None` when the file is absent (a group only has
/// the logs of metrics it can record: absent reads as empty).
pub(super) fn read_log(path: &Path) -> Result<Option<Vec<RawInterval>>> {
    match hlog::read_raw(path) {
        Ok(log) => Ok(Some(log)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(folder_error(
            path,
            format!("not a readable HdrHistogram interval log: {e}"),
        )),
    }
}

fn system_time(unix_s: f64) -> SystemTime {
    UNIX_EPOCH + Duration::try_from_secs_f64(unix_s.max(0.0)).unwrap_or_default()
}

/// Every shard's intervals, on the merged time base, in start order.
pub(super) fn merge_logs(
    shards: &[ShardData],
    rows: &[SummaryRow],
    epoch: f64,
    out: &Path,
) -> Result<()> {
    let mut paths = Vec::new();
    let mut contents = Vec::new();
    for r in rows {
        // The room-size buckets' log too, when the group has one.
        let names = Latency::ALL
            .iter()
            .map(|m| hlog_name(&r.group, m.label()))
            .chain([crate::folder::rooms::hlog_name(&r.group)]);
        for name in names {
            let mut all: Vec<RawInterval> = Vec::new();
            let mut logged = false;
            for s in shards {
                if !s.rows.iter().any(|x| x.group == r.group) {
                    continue;
                }
                let shift = s.epoch - epoch;
                let Some(log) = read_log(&s.dir.join(&name))? else {
                    continue;
                };
                logged = true;
                all.extend(log.into_iter().map(|mut iv| {
                    iv.start_s += shift;
                    iv
                }));
            }
            // Only the logs some shard wrote: the metrics the group has.
            if !logged {
                continue;
            }
            all.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
            paths.push(out.join(&name));
            contents.push((name, all));
        }
    }
    let writer =
        HlogWriter::create(paths, system_time(epoch)).map_err(|e| Error::output(out, e))?;
    for (file, (name, intervals)) in contents.iter().enumerate() {
        for iv in intervals {
            let h = hlog::decode(&iv.encoded).map_err(|e| {
                folder_error(
                    &out.join(name),
                    format!("not a readable interval histogram: {e}"),
                )
            })?;
            writer.write_tagged(
                file,
                &h,
                Duration::try_from_secs_f64(iv.start_s.max(0.0)).unwrap_or_default(),
                Duration::try_from_secs_f64(iv.duration_s.max(0.0)).unwrap_or_default(),
                iv.tag.as_deref(),
            );
        }
    }
    writer.finish().map_err(|e| Error::output(out, e))
}
