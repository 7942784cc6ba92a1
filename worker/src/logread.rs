//! `WorkerControl.ReadLog`: a byte range of a process's stdout or stderr (or of one of
//! their rotated files, see `logs`), for `hearth logs`. Reads only files of a process
//! directory named by a plain id (no path can be smuggled in), and changes nothing.

use crate::plan::file_name;
use hearth_proto::pb;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tonic::Status;

/// The most one answer carries.
pub const MAX_READ: u32 = 1 << 20;
/// What a request without `max_bytes` gets.
const DEFAULT_READ: u32 = 64 << 10;

/// The file `r` names under `work_dir`, checked.
pub(crate) fn log_file(work_dir: &Path, r: &pb::ReadLogRequest) -> Result<PathBuf, Status> {
    let invalid = |e: crate::error::WorkerError| Status::invalid_argument(e.to_string());
    let dir = if !r.driver_id.is_empty() {
        work_dir.join(file_name("driver_id", &r.driver_id).map_err(invalid)?)
    } else {
        work_dir
            .join(file_name("app_id", &r.app_id).map_err(invalid)?)
            .join(r.executor_id.to_string())
    };
    let stream = if r.stderr { "stderr" } else { "stdout" };
    Ok(match r.rotated {
        0 => dir.join(stream),
        n if n < 1000 => dir.join(format!("{stream}.{n}")),
        n => {
            return Err(Status::invalid_argument(format!(
                "rotated {n} is not a file index"
            )))
        }
    })
}

/// The range of `file` that `offset` (negative: from the end) and `max` ask for, given
/// its `size`: (start, length).
pub(crate) fn range(size: u64, offset: i64, max: u32) -> (u64, u64) {
    let max = u64::from(match max {
        0 => DEFAULT_READ,
        m => m.min(MAX_READ),
    });
    let start = if offset < 0 {
        size.saturating_sub(offset.unsigned_abs())
    } else {
        (offset as u64).min(size)
    };
    (start, (size - start).min(max))
}

/// Reads what `r` asks of `file`; `running`: whether its process still runs here.
pub(crate) fn read(
    file: &Path,
    r: &pb::ReadLogRequest,
    running: bool,
) -> Result<pb::ReadLogResponse, Status> {
    let mut f = std::fs::File::open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Status::not_found(format!(
            "no such output on this worker: {} (the process never ran here, or its directory was cleaned up)",
            file.display()
        )),
        _ => Status::internal(format!("{}: {e}", file.display())),
    })?;
    let size = f
        .metadata()
        .map_err(|e| Status::internal(format!("{}: {e}", file.display())))?
        .len();
    let (start, len) = range(size, r.offset, r.max_bytes);
    let mut data = Vec::with_capacity(len as usize);
    f.seek(SeekFrom::Start(start))
        .and_then(|_| f.by_ref().take(len).read_to_end(&mut data))
        .map_err(|e| Status::internal(format!("{}: {e}", file.display())))?;
    Ok(pb::ReadLogResponse {
        offset: start,
        size,
        data,
        running,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(driver: &str, app: &str, executor: u32) -> pb::ReadLogRequest {
        pb::ReadLogRequest {
            driver_id: driver.into(),
            app_id: app.into(),
            executor_id: executor,
            ..Default::default()
        }
    }

    #[test]
    fn the_file_is_under_the_work_dir_and_named_by_plain_ids_only() {
        let w = Path::new("/w");
        assert_eq!(
            log_file(w, &req("driver-1", "", 0)).unwrap(),
            Path::new("/w/driver-1/stdout")
        );
        let mut r = req("", "app-1", 3);
        r.stderr = true;
        r.rotated = 2;
        assert_eq!(log_file(w, &r).unwrap(), Path::new("/w/app-1/3/stderr.2"));
        for bad in ["..", "../etc", "a/b", ""] {
            let e = log_file(w, &req("", bad, 0)).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{bad}");
        }
        assert!(log_file(w, &req("../x", "", 0)).is_err());
    }

    #[test]
    fn ranges_from_the_start_or_the_end_are_clamped() {
        assert_eq!(range(100, 0, 10), (0, 10));
        assert_eq!(range(100, 95, 10), (95, 5));
        assert_eq!(range(100, 500, 10), (100, 0));
        assert_eq!(range(100, -30, 0), (70, 30));
        assert_eq!(range(100, -300, 0), (0, 100));
        assert_eq!(range(10 << 20, 0, u32::MAX), (0, 1 << 20));
        assert_eq!(range(1 << 20, 0, 0), (0, 64 << 10));
    }
}
