//! The client: one datagram socket of its own, bound to a path beside the caller's files, that
//! sends one request at a time to ptp4l's `uds_address` and waits (bounded) for the answer.
//! Pushed notifications that arrive meanwhile (after [`Client::subscribe`]) are kept for
//! [`Client::next_push`].

use std::collections::VecDeque;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use tokio::net::UnixDatagram;
use tokio::time::Instant;

use crate::codec::{self, Action, Dataset, Message, PortIdentity, Tlv, id};

/// Why a management exchange failed. Every variant names the ptp4l socket.
#[derive(Debug, thiserror::Error)]
pub enum MgmtError {
    /// Our own socket could not be made.
    #[error("management client socket {path}: {source}")]
    Bind {
        /// Its path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Nothing is at the ptp4l socket path.
    #[error("no ptp4l management socket at {0} (is ptp4l running with this uds_address?)")]
    NoSocket(PathBuf),
    /// The path exists but nobody reads it (ptp4l exited and left it, or it is not a socket).
    #[error("ptp4l management socket {path} refuses: {source} (is ptp4l running?)")]
    Refused {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another I/O error while sending or receiving.
    #[error("ptp4l management socket {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// No answer in time.
    #[error("ptp4l at {path} did not answer {what} within {timeout:?}")]
    Timeout {
        /// The path.
        path: PathBuf,
        /// The request, as pmc would write it.
        what: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// ptp4l answered with MANAGEMENT_ERROR_STATUS.
    #[error("ptp4l at {path} refused {what}: {error}{text}", text = if display.is_empty() { String::new() } else { format!(" ({display})") })]
    Status {
        /// The path.
        path: PathBuf,
        /// The request.
        what: String,
        /// The error id (NO_SUCH_ID for a TLV this ptp4l does not know).
        error: codec::ManagementErrorId,
        /// displayData.
        display: String,
    },
    /// The answer carried another dataset than the one asked for.
    #[error("ptp4l at {path} answered {what} with {got}")]
    Unexpected {
        /// The path.
        path: PathBuf,
        /// The request.
        what: String,
        /// What came instead.
        got: String,
    },
}

impl MgmtError {
    /// True when the ptp4l is not there (no socket, or nobody reading it): worth retrying
    /// later, not a protocol problem.
    pub fn is_absent(&self) -> bool {
        matches!(self, MgmtError::NoSocket(_) | MgmtError::Refused { .. })
    }
}

/// How the client addresses ptp4l.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// ptp4l's `domainNumber` (its UNIX port ignores other domains).
    pub domain: u8,
    /// ptp4l's `transportSpecific`.
    pub transport_specific: u8,
    /// How long to wait for an answer.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            domain: 0,
            transport_specific: 0,
            timeout: Duration::from_millis(500),
        }
    }
}

/// A management client of one ptp4l.
pub struct Client {
    socket: UnixDatagram,
    local: PathBuf,
    local_ino: (u64, u64),
    server: PathBuf,
    cfg: ClientConfig,
    source: PortIdentity,
    sequence: u16,
    pushes: VecDeque<Message>,
    subscribed: bool,
}

static NEXT: AtomicU16 = AtomicU16::new(0);

fn name_of(id: u16) -> String {
    id::name(id).map_or_else(|| format!("management id 0x{id:04x}"), str::to_owned)
}

impl Client {
    /// A client of the ptp4l whose `uds_address` is `server`; its own socket is made in
    /// `local_dir` (removed when the client is dropped).
    pub fn new(server: &Path, local_dir: &Path, cfg: ClientConfig) -> Result<Client, MgmtError> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let local = local_dir.join(format!(".ptp-mgmt.{pid}.{n}"));
        // Ours from an earlier process with the same pid and number: a stale socket.
        if let Ok(m) = std::fs::symlink_metadata(&local)
            && m.file_type().is_socket()
        {
            let _ = std::fs::remove_file(&local);
        }
        let socket = UnixDatagram::bind(&local).map_err(|source| MgmtError::Bind {
            path: local.clone(),
            source,
        })?;
        let m = std::fs::symlink_metadata(&local).map_err(|source| MgmtError::Bind {
            path: local.clone(),
            source,
        })?;
        Ok(Client {
            socket,
            local,
            local_ino: (m.dev(), m.ino()),
            server: server.to_path_buf(),
            cfg,
            // pmc's habit: a zero clock identity and a port number of its own.
            source: PortIdentity {
                clock: codec::ClockIdentity([0; 8]),
                port: ((pid as u16) ^ n.rotate_left(8)).max(1),
            },
            sequence: 0,
            pushes: VecDeque::new(),
            subscribed: false,
        })
    }

    /// The ptp4l socket this client talks to.
    pub fn server(&self) -> &Path {
        &self.server
    }

    async fn send(&mut self, mut msg: Message) -> Result<u16, MgmtError> {
        msg.domain = self.cfg.domain;
        msg.transport_specific = self.cfg.transport_specific;
        let seq = self.sequence;
        msg.sequence_id = seq;
        self.sequence = self.sequence.wrapping_add(1);
        let bytes = codec::encode(&msg);
        match self.socket.send_to(&bytes, &self.server).await {
            Ok(_) => Ok(seq),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(MgmtError::NoSocket(self.server.clone()))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(MgmtError::Refused {
                path: self.server.clone(),
                source: e,
            }),
            Err(e) => Err(MgmtError::Io {
                path: self.server.clone(),
                source: e,
            }),
        }
    }

    /// The next RESPONSE that arrives before `until` (`Ok(None)` when none does). Anything
    /// else is dropped (a request looped back, garbage), except a management message that
    /// carries the sequence id `seq` (when given) but cannot be decoded: that is the answer, and it is an error, so
    /// that a dataset this crate reads wrongly is reported at once, not as a timeout.
    async fn recv_response(
        &mut self,
        seq: Option<u16>,
        what: &str,
        until: Instant,
    ) -> Result<Option<Message>, MgmtError> {
        let mut buf = vec![0u8; codec::MAX_MESSAGE];
        loop {
            let n = match tokio::time::timeout_at(until, self.socket.recv(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "management receive failed");
                    return Ok(None);
                }
                Ok(Ok(n)) => n,
            };
            match codec::decode(&buf[..n]) {
                Ok(m) if m.action == Action::Response => return Ok(Some(m)),
                Ok(_) => {}
                Err(e) if seq.is_some() && codec::sequence_id(&buf[..n]) == seq => {
                    return Err(MgmtError::Unexpected {
                        path: self.server.clone(),
                        what: what.to_owned(),
                        got: format!("a message it cannot decode ({e})"),
                    });
                }
                Err(e) => tracing::debug!(error = %e, "management message not understood"),
            }
        }
    }

    /// Receives until `until`: the answer to `seq` is returned; other responses are pushes
    /// (or answers to an earlier request that timed out) and are kept as pushes.
    async fn recv_answer(
        &mut self,
        seq: u16,
        what: &str,
        until: Instant,
    ) -> Result<Option<Message>, MgmtError> {
        loop {
            let Some(m) = self.recv_response(Some(seq), what, until).await? else {
                return Ok(None);
            };
            if m.sequence_id == seq {
                return Ok(Some(m));
            }
            if self.subscribed {
                self.pushes.push_back(m);
                if self.pushes.len() > 64 {
                    self.pushes.pop_front();
                }
            }
        }
    }

    fn check(&self, what: &str, want: u16, m: Message) -> Result<Dataset, MgmtError> {
        match m.tlv {
            Tlv::Management(d) if d.id() == want => Ok(d),
            Tlv::Error { error, display, .. } => Err(MgmtError::Status {
                path: self.server.clone(),
                what: what.to_owned(),
                error,
                display,
            }),
            other => Err(MgmtError::Unexpected {
                path: self.server.clone(),
                what: what.to_owned(),
                got: name_of(other.id()),
            }),
        }
    }

    /// One request, one answer.
    async fn exchange(&mut self, msg: Message, what: String) -> Result<Dataset, MgmtError> {
        let want = msg.tlv.id();
        let seq = self.send(msg).await?;
        let until = Instant::now() + self.cfg.timeout;
        match self.recv_answer(seq, &what, until).await? {
            Some(m) => self.check(&what, want, m),
            None => Err(MgmtError::Timeout {
                path: self.server.clone(),
                what,
                timeout: self.cfg.timeout,
            }),
        }
    }

    /// GET of a clock-level dataset (not PORT_DATA_SET: use [`Client::get_ports`]).
    pub async fn get(&mut self, id: u16) -> Result<Dataset, MgmtError> {
        let msg = Message::get(self.source, 0, id);
        self.exchange(msg, format!("GET {}", name_of(id))).await
    }

    /// SET of `data`; returns the dataset as ptp4l echoes it.
    pub async fn set(&mut self, data: Dataset) -> Result<Dataset, MgmtError> {
        let what = format!("SET {}", name_of(data.id()));
        let msg = Message::set(self.source, 0, data);
        self.exchange(msg, what).await
    }

    /// PARENT_DATA_SET.
    pub async fn parent_data_set(&mut self) -> Result<codec::ParentDataSet, MgmtError> {
        match self.get(id::PARENT_DATA_SET).await? {
            Dataset::Parent(p) => Ok(p),
            _ => unreachable!("check() matched the id"),
        }
    }

    /// TIME_PROPERTIES_DATA_SET.
    pub async fn time_properties(&mut self) -> Result<codec::TimePropertiesDataSet, MgmtError> {
        match self.get(id::TIME_PROPERTIES_DATA_SET).await? {
            Dataset::TimeProperties(t) => Ok(t),
            _ => unreachable!("check() matched the id"),
        }
    }

    /// CURRENT_DATA_SET.
    pub async fn current_data_set(&mut self) -> Result<codec::CurrentDataSet, MgmtError> {
        match self.get(id::CURRENT_DATA_SET).await? {
            Dataset::Current(c) => Ok(c),
            _ => unreachable!("check() matched the id"),
        }
    }

    /// DEFAULT_DATA_SET.
    pub async fn default_data_set(&mut self) -> Result<codec::DefaultDataSet, MgmtError> {
        match self.get(id::DEFAULT_DATA_SET).await? {
            Dataset::Default(d) => Ok(d),
            _ => unreachable!("check() matched the id"),
        }
    }

    /// GRANDMASTER_SETTINGS_NP.
    pub async fn grandmaster_settings(&mut self) -> Result<codec::GrandmasterSettings, MgmtError> {
        match self.get(id::GRANDMASTER_SETTINGS_NP).await? {
            Dataset::GrandmasterSettings(g) => Ok(g),
            _ => unreachable!("check() matched the id"),
        }
    }

    /// SET GRANDMASTER_SETTINGS_NP; returns what ptp4l now holds.
    pub async fn set_grandmaster_settings(
        &mut self,
        g: codec::GrandmasterSettings,
    ) -> Result<codec::GrandmasterSettings, MgmtError> {
        match self.set(Dataset::GrandmasterSettings(g)).await? {
            Dataset::GrandmasterSettings(g) => Ok(g),
            _ => unreachable!("check() matched the id"),
        }
    }

    /// PORT_DATA_SET of every port: each port answers on its own, so this asks
    /// DEFAULT_DATA_SET for the number of ports first and waits for that many answers.
    pub async fn get_ports(&mut self) -> Result<Vec<codec::PortDataSet>, MgmtError> {
        let ports = usize::from(self.default_data_set().await?.number_ports);
        let what = "GET PORT_DATA_SET".to_owned();
        let seq = self
            .send(Message::get(self.source, 0, id::PORT_DATA_SET))
            .await?;
        let until = Instant::now() + self.cfg.timeout;
        let mut out = Vec::with_capacity(ports);
        while out.len() < ports {
            let Some(m) = self.recv_answer(seq, &what, until).await? else {
                return Err(MgmtError::Timeout {
                    path: self.server.clone(),
                    what: format!("{what} ({} of {ports} ports answered)", out.len()),
                    timeout: self.cfg.timeout,
                });
            };
            if let Dataset::Port(p) = self.check(&what, id::PORT_DATA_SET, m)? {
                out.push(p);
            }
        }
        out.sort_by_key(|p| p.port_identity.port);
        Ok(out)
    }

    /// SET SUBSCRIBE_EVENTS_NP for `events`, `duration` seconds; returns what ptp4l accepted
    /// (linuxptp 3.1.1 keeps only the port-state bit). Pushes then arrive on this client.
    pub async fn subscribe(
        &mut self,
        events: &[codec::NotifyEvent],
        duration: u16,
    ) -> Result<codec::SubscribeEvents, MgmtError> {
        self.subscribed = true;
        match self
            .set(Dataset::SubscribeEvents(codec::SubscribeEvents::new(
                duration, events,
            )))
            .await?
        {
            Dataset::SubscribeEvents(s) => Ok(s),
            _ => unreachable!("check() matched the id"),
        }
    }

    /// The next pushed notification, waiting at most `wait`.
    pub async fn next_push(&mut self, wait: Duration) -> Option<Message> {
        if let Some(m) = self.pushes.pop_front() {
            return Some(m);
        }
        let until = Instant::now() + wait;
        self.recv_response(None, "", until).await.ok().flatten()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.local)
            && m.file_type().is_socket()
            && (m.dev(), m.ino()) == self.local_ino
        {
            let _ = std::fs::remove_file(&self.local);
        }
    }
}
