//! The driver: a task queue served to executors, results merged by task id.

use super::*;

#[derive(Default)]
pub(crate) struct State {
    pub(crate) queue: VecDeque<u64>,
    pub(crate) results: Vec<Option<u64>>,
    pub(crate) recorded: u64,
    pub(crate) inside_total: u64,
    pub(crate) in_flight: HashMap<u64, Vec<u64>>, // connection number -> task ids
    pub(crate) next_conn: u64,
    pub(crate) active: usize,
    pub(crate) requeued: u64,
}

pub(crate) struct Shared {
    pub(crate) tasks: u64,
    pub(crate) samples: u64,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_reply(&self, conn: u64) -> Msg {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.recorded == self.tasks {
            return Msg::Done;
        }
        while let Some(id) = st.queue.pop_front() {
            if st.results[id as usize].is_none() {
                st.in_flight.entry(conn).or_default().push(id);
                return Msg::Task {
                    id,
                    seed: task_seed(id),
                    samples: self.samples,
                };
            }
        }
        Msg::Wait
    }

    /// Err closes the connection (its in-flight tasks, this one included, are re-queued).
    pub(crate) fn record(&self, conn: u64, id: u64, inside: u64) -> Result<(), String> {
        if id >= self.tasks {
            return Err(format!("RESULT for unknown task {id}"));
        }
        if inside > self.samples {
            return Err(format!(
                "RESULT {id} {inside}: more than {} samples",
                self.samples
            ));
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        let flight = st.in_flight.entry(conn).or_default();
        let pos = flight.iter().position(|&t| t == id);
        let solicited = pos.map(|p| flight.swap_remove(p)).is_some();
        match st.results[id as usize] {
            Some(prev) if prev == inside => {
                dlog!("duplicate result for task {id} ignored");
            }
            Some(prev) => dlog!(
                "MISMATCH for task {id}: recorded inside={prev}, \
                 executor #{conn} sent {inside}; keeping the recorded value"
            ),
            None => {
                if !solicited {
                    dlog!(
                        "executor #{conn} sent a result for task {id} it was not given; accepted"
                    );
                }
                st.results[id as usize] = Some(inside);
                st.recorded += 1;
                st.inside_total += inside;
                let step = (self.tasks / 10).max(1);
                if st.recorded.is_multiple_of(step) || st.recorded == self.tasks {
                    dlog!("{}/{} results in", st.recorded, self.tasks);
                }
                self.changed.notify_all();
            }
        }
        Ok(())
    }

    pub(crate) fn serve(&self, stream: TcpStream, peer: String) {
        let conn = {
            let mut st = self.lock();
            st.next_conn += 1;
            st.active += 1;
            let conn = st.next_conn;
            st.in_flight.insert(conn, Vec::new());
            dlog!(
                "executor #{conn} connected from {peer} ({} active)",
                st.active
            );
            conn
        };
        let _ = stream.set_nodelay(true);
        let reason = self.conversation(conn, &stream);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let mut guard = self.lock();
        let st = &mut *guard;
        st.active -= 1;
        let held = st.in_flight.remove(&conn).unwrap_or_default();
        let back: Vec<u64> = held
            .into_iter()
            .filter(|&t| st.results[t as usize].is_none())
            .collect();
        for &t in back.iter().rev() {
            st.queue.push_front(t);
        }
        st.requeued += back.len() as u64;
        dlog!(
            "executor #{conn} disconnected ({reason}); {} active",
            st.active
        );
        if !back.is_empty() {
            dlog!(
                "re-queued {} task(s) of executor #{conn}: {back:?}",
                back.len()
            );
        }
        self.changed.notify_all();
    }

    /// Waits until `pred` holds or `timeout` passes; returns whether it holds.
    pub(crate) fn wait_until(&self, timeout: Duration, pred: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while !pred(&st) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Blocks until every task has a result (waiting for new executors if need be).
    pub(crate) fn wait_complete(&self) -> String {
        while !self.wait_until(Duration::from_secs(3600), |st| st.recorded == self.tasks) {}
        result_line(self.lock().inside_total, self.tasks, self.samples)
    }

    /// Runs one connection until it ends; returns why it ended.
    pub(crate) fn conversation(&self, conn: u64, stream: &TcpStream) -> String {
        let mut reader = BufReader::new(stream);
        let mut writer = stream;
        loop {
            let line = match read_line(&mut reader) {
                Ok(Some(line)) => line,
                Ok(None) => return "closed by peer".into(),
                Err(e) => return format!("read failed: {e}"),
            };
            let reply = match Msg::parse(&line) {
                Ok(Msg::Get) => self.next_reply(conn),
                Ok(Msg::Result { id, inside }) => match self.record(conn, id, inside) {
                    Ok(()) => continue,
                    Err(e) => return format!("protocol error: {e}"),
                },
                Ok(other) => return format!("protocol error: unexpected {other:?}"),
                Err(e) => return format!("protocol error: {e}"),
            };
            if let Err(e) = writer.write_all(reply.to_line().as_bytes()) {
                return format!("write failed: {e}");
            }
        }
    }
}

/// Binds, starts the accept loop (a thread per connection) and returns the shared state.
pub(crate) fn start_driver(
    addr: SocketAddr,
    tasks: u64,
    samples: u64,
) -> io::Result<(Arc<Shared>, SocketAddr)> {
    let listener = TcpListener::bind(addr)?;
    let addr = listener.local_addr()?;
    let state = State {
        queue: (0..tasks).collect(),
        results: vec![None; tasks as usize],
        ..State::default()
    };
    let shared = Arc::new(Shared {
        tasks,
        samples,
        state: Mutex::new(state),
        changed: Condvar::new(),
    });
    let sh = shared.clone();
    thread::Builder::new()
        .name("accept".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(stream) => {
                        let peer = stream.peer_addr().map_or("?".into(), |a| a.to_string());
                        let sh = sh.clone();
                        if let Err(e) = thread::Builder::new().spawn(move || sh.serve(stream, peer))
                        {
                            dlog!("cannot start a connection thread: {e}");
                        }
                    }
                    Err(e) => {
                        dlog!("accept failed: {e}");
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })?;
    Ok((shared, addr))
}
