//! HdrHistogram interval logs (`.hlog`), one per group and latency metric, in
//! the format HdrHistogram's own tools read: V2+DEFLATE histograms, base64,
//! one line per interval. Values are microseconds; `MaxValueDivisor` 1000
//! makes the max column milliseconds. A writer thread owns the files (the
//! crate's writer borrows its file for its whole life), fed one message per
//! group and interval.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use base64::Engine;

enum Msg {
    Write {
        file: usize,
        hist: Box<Histogram<u64>>,
        start: Duration,
        duration: Duration,
        tag: Option<String>,
    },
}

/// Sends interval histograms to the writer thread.
pub struct HlogWriter {
    tx: Option<mpsc::Sender<Msg>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl HlogWriter {
    /// Creates the files (all at once, so a bad folder fails early) and
    /// starts the writer thread. A `None` path keeps its index but writes
    /// nothing: a metric the group cannot have gets no file.
    pub fn create<P: Into<Option<PathBuf>>>(
        paths: Vec<P>,
        start_time: SystemTime,
    ) -> io::Result<HlogWriter> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            files.push(match p.into() {
                Some(p) => Some(File::create(p)?),
                None => None,
            });
        }
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("stampede-hlog".into())
            .spawn(move || write_loop(files, rx, start_time))?;
        Ok(HlogWriter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues one interval for file `file` (index into the creation list).
    pub fn write(&self, file: usize, hist: &Histogram<u64>, start: Duration, duration: Duration) {
        self.write_tagged(file, hist, start, duration, None)
    }

    /// Like [`HlogWriter::write`], with the interval tagged `tag` (no
    /// commas or whitespace: HdrHistogram's `Tag=` syntax), so one file
    /// holds several histograms per interval.
    pub fn write_tagged(
        &self,
        file: usize,
        hist: &Histogram<u64>,
        start: Duration,
        duration: Duration,
        tag: Option<&str>,
    ) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Write {
                file,
                hist: Box::new(hist.clone()),
                start,
                duration,
                tag: tag.map(str::to_string),
            });
        }
    }

    /// Flushes and closes every file.
    pub fn finish(mut self) -> io::Result<()> {
        self.close()
    }

    fn close(&mut self) -> io::Result<()> {
        self.tx.take();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("hlog writer panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for HlogWriter {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn write_loop(
    mut files: Vec<Option<File>>,
    rx: mpsc::Receiver<Msg>,
    start_time: SystemTime,
) -> io::Result<()> {
    let mut serializers: Vec<V2DeflateSerializer> =
        files.iter().map(|_| V2DeflateSerializer::new()).collect();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("[Logged with stampede; values are microseconds: HistogramLogProcessor -outputValueUnitRatio 1000 gives ms]")
        .add_comment("[Histogram log format version 1.3]")
        .with_start_time(start_time)
        .with_base_time(start_time)
        .with_max_value_divisor(1000.0);
    let mut writers = Vec::with_capacity(files.len());
    for (f, s) in files.iter_mut().zip(serializers.iter_mut()) {
        writers.push(match f {
            Some(f) => Some(builder.begin_log_with(f, s)?),
            None => None,
        });
    }
    while let Ok(Msg::Write {
        file,
        hist,
        start,
        duration,
        tag,
    }) = rx.recv()
    {
        if let Some(Some(w)) = writers.get_mut(file) {
            let tag = tag.as_deref().and_then(Tag::new);
            w.write_histogram(&hist, start, duration, tag)
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
    }
    drop(writers);
    for f in files.iter_mut().flatten() {
        f.flush()?;
    }
    Ok(())
}

/// One interval read back from a log.
#[derive(Debug)]
pub struct LoggedInterval {
    /// Start, seconds since the log's base time.
    pub start_s: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// The histogram.
    pub hist: Histogram<u64>,
}

/// Reads every interval of an `.hlog` file.
pub fn read(path: &Path) -> io::Result<Vec<LoggedInterval>> {
    let mut out = Vec::new();
    for_each(path, |iv| out.push(iv))?;
    Ok(out)
}

/// Like [`read`], with an absent file read as empty: a group only has the
/// logs of the metrics it can record.
pub fn read_or_empty(path: &Path) -> io::Result<Vec<LoggedInterval>> {
    match read(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        r => r,
    }
}

/// Calls `f` with each interval of an `.hlog` file in order. Only one
/// decoded histogram is alive at a time: a long run's log holds thousands of
/// intervals of a few hundred KiB each once decoded.
pub fn for_each(path: &Path, mut f: impl FnMut(LoggedInterval)) -> io::Result<()> {
    let mut de = Deserializer::new();
    for raw in read_raw(path)? {
        f(LoggedInterval {
            start_s: raw.start_s,
            duration_s: raw.duration_s,
            hist: decode_with(&mut de, &raw.encoded)?,
        });
    }
    Ok(())
}

/// One interval as logged, its histogram still encoded: a few hundred
/// bytes, where the decoded histogram takes about 180 KiB.
#[derive(Debug, Clone)]
pub struct RawInterval {
    /// Start, seconds since the log's base time.
    pub start_s: f64,
    /// Length in seconds.
    pub duration_s: f64,
    /// Base64 of the V2+DEFLATE histogram.
    pub encoded: String,
    /// The interval's tag, if it has one.
    pub tag: Option<String>,
}

/// Reads every interval of an `.hlog` file without decoding histograms.
pub fn read_raw(path: &Path) -> io::Result<Vec<RawInterval>> {
    let bytes = std::fs::read(path)?;
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(&bytes) {
        let entry = entry.map_err(|e| {
            let hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } =
                e;
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not an interval log line at byte {offset}"),
            )
        })?;
        if let LogEntry::Interval(ilh) = entry {
            out.push(RawInterval {
                start_s: ilh.start_timestamp().as_secs_f64(),
                duration_s: ilh.duration().as_secs_f64(),
                encoded: ilh.encoded_histogram().to_string(),
                tag: ilh.tag().map(|t| t.as_str().to_string()),
            });
        }
    }
    Ok(out)
}

/// Decodes one logged histogram.
pub fn decode(encoded: &str) -> io::Result<Histogram<u64>> {
    decode_with(&mut Deserializer::new(), encoded)
}

fn decode_with(de: &mut Deserializer, encoded: &str) -> io::Result<Histogram<u64>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    de.deserialize(&mut io::Cursor::new(raw))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}
