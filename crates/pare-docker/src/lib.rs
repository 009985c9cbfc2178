//! The one Docker Engine client of pare: every crate that talks to the daemon (pare-source's
//! `docker-daemon:` source, pare-runtime's `docker` runtime and, through it, pare-compose)
//! connects here, so all of them agree on:
//!
//! * **which daemon**: `DOCKER_HOST` when set and not empty, else the local socket
//!   ([`Client::connect`]); the host is kept with the client ([`Client::host`],
//!   [`Client::is_local`]) so errors name it;
//! * **the API version**: `negotiate_version()` and a ping at connect, both within the
//!   caller's timeout (dockerd here speaks 1.41, bollard 0.21 defaults to a newer one);
//! * **timeouts on every call**: [`Client::call`] bounds one request by [`CALL_TIMEOUT`]
//!   and [`Client::next`] bounds the wait for each chunk of a streamed answer (an export,
//!   logs, exec output) by the same, so a daemon that stops answering is an error, never a
//!   hang. A call that times out fails as bollard's own `RequestTimeoutError`, so callers
//!   classify it with [`is_lost`] like any transport error;
//! * **one tokio runtime**: a process-wide runtime (one worker, `pare-docker`) drives every
//!   call; the callers are synchronous and use [`Client::block_on`], which also works from
//!   inside a caller's own tokio runtime (the future then runs on a scoped helper thread, so
//!   `block_on` never nests).
//!
//! bollard's request and model types are re-exported as [`bollard`], so no other crate
//! depends on bollard directly.
//!
//! Not (yet) through here: pare-write's `docker load`, which runs the docker CLI (see
//! `pare_write::docker_load` for why).

#![deny(missing_docs)]

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

pub use bollard;
use bollard::Docker;
use bollard::errors::Error as ApiError;
use futures_util::{Stream, StreamExt};

/// How long one API call (or one chunk of a streamed answer) may take before the daemon
/// counts as not answering: bollard's own default request timeout.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The daemon address used when `DOCKER_HOST` is unset or empty.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Why no client could be made. The host is the daemon as a user would name it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The process-wide tokio runtime could not be built.
    #[error("tokio runtime for the docker client")]
    Runtime {
        /// Why tokio could not start it.
        #[source]
        source: std::io::Error,
    },
    /// The address could not be used (bad `DOCKER_HOST`, missing TLS material, …).
    #[error("{host}")]
    Address {
        /// The daemon, as the user named it.
        host: String,
        /// What bollard said.
        #[source]
        source: ApiError,
    },
    /// The daemon could not be reached, or answered the version or ping request with an
    /// error.
    #[error("{host}")]
    Refused {
        /// The daemon, as the user named it.
        host: String,
        /// What bollard said.
        #[source]
        source: ApiError,
    },
    /// The daemon did not answer the version request in time.
    #[error("{host}: no answer within {timeout:?}")]
    NoAnswer {
        /// The daemon, as the user named it.
        host: String,
        /// How long it was waited for.
        timeout: Duration,
    },
    /// The daemon did not answer the ping in time.
    #[error("{host}: no ping answer within {timeout:?}")]
    NoPing {
        /// The daemon, as the user named it.
        host: String,
        /// How long it was waited for.
        timeout: Duration,
    },
}

/// A connected client: the bollard handle with its negotiated API version, and the host it
/// talks to. Cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct Client {
    docker: Docker,
    host: String,
    rt: &'static tokio::runtime::Runtime,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// The process-wide runtime every call runs on.
fn runtime() -> Result<&'static tokio::runtime::Runtime, ConnectError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, (std::io::ErrorKind, String)>> =
        OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pare-docker")
            .enable_all()
            .build()
            .map_err(|e| (e.kind(), e.to_string()))
    })
    .as_ref()
    .map_err(|(kind, msg)| ConnectError::Runtime {
        source: std::io::Error::new(*kind, msg.clone()),
    })
}

/// Runs `fut` to completion on `rt` from sync code, or from inside another tokio runtime
/// (then on a scoped helper thread, so that `block_on` never nests).
fn block_on_rt<F>(rt: &tokio::runtime::Runtime, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(|| rt.block_on(fut)).join())
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    } else {
        rt.block_on(fut)
    }
}

/// The daemon `DOCKER_HOST` names (empty when unset: the default socket).
fn env_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_default()
}

impl Client {
    /// Connects to `DOCKER_HOST` (or the default socket), negotiates the API version and
    /// pings, each within `timeout`.
    pub fn connect(timeout: Duration) -> Result<Self, ConnectError> {
        Self::connect_with_host(&env_host(), timeout)
    }

    /// Like [`connect`](Self::connect) with an explicit host (`unix://…`, `tcp://…`; empty =
    /// `DOCKER_HOST` or the default socket).
    pub fn connect_with_host(host: &str, timeout: Duration) -> Result<Self, ConnectError> {
        let rt = runtime()?;
        let named = if host.is_empty() {
            Some(env_host()).filter(|h| !h.is_empty())
        } else {
            Some(host.to_string())
        }
        .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let docker = if host.is_empty() {
            Docker::connect_with_defaults()
        } else {
            Docker::connect_with_host(host)
        }
        .map_err(|source| ConnectError::Address {
            host: named.clone(),
            source,
        })?
        .with_timeout(CALL_TIMEOUT);
        let docker = block_on_rt(rt, async {
            let version = tokio::time::timeout(timeout, docker.negotiate_version()).await;
            let docker = answered(&named, timeout, Request::Version, version)?;
            let ping = tokio::time::timeout(timeout, docker.ping()).await;
            answered(&named, timeout, Request::Ping, ping)?;
            Ok::<_, ConnectError>(docker)
        })?;
        Ok(Self {
            docker,
            host: named,
            rt,
        })
    }

    /// The bollard handle (API version negotiated). Wrap its calls in [`call`](Self::call).
    pub fn api(&self) -> &Docker {
        &self.docker
    }

    /// The daemon this client talks to, as a user would name it (`unix:///var/run/docker.sock`,
    /// `tcp://…`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the daemon runs on this host (a unix socket): the pids and container
    /// addresses it reports are then ours to signal and to reach.
    pub fn is_local(&self) -> bool {
        self.host.starts_with("unix://")
    }

    /// Runs `fut` to completion on the one runtime (see the crate docs).
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        block_on_rt(self.rt, fut)
    }

    /// One API call, bounded by [`CALL_TIMEOUT`]; a call that takes longer fails as
    /// `RequestTimeoutError`.
    pub async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        within(CALL_TIMEOUT, fut).await
    }

    /// The next chunk of a streamed answer, waited for at most [`CALL_TIMEOUT`]; a chunk that
    /// takes longer ends the stream with `RequestTimeoutError`.
    pub async fn next<T, S>(&self, stream: &mut S) -> Option<Result<T, ApiError>>
    where
        S: Stream<Item = Result<T, ApiError>> + Unpin,
    {
        match tokio::time::timeout(CALL_TIMEOUT, stream.next()).await {
            Ok(item) => item,
            Err(_) => Some(Err(ApiError::RequestTimeoutError)),
        }
    }
}

/// The two requests of a connect.
enum Request {
    Version,
    Ping,
}

/// A connect request's answer, or the error naming the host.
fn answered<T>(
    host: &str,
    timeout: Duration,
    request: Request,
    r: Result<Result<T, ApiError>, tokio::time::error::Elapsed>,
) -> Result<T, ConnectError> {
    let host = host.to_string();
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ConnectError::Refused { host, source }),
        Err(_) => Err(match request {
            Request::Version => ConnectError::NoAnswer { host, timeout },
            Request::Ping => ConnectError::NoPing { host, timeout },
        }),
    }
}

/// `fut`, failing as `RequestTimeoutError` when it takes longer than `limit`.
async fn within<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or(Err(ApiError::RequestTimeoutError))
}

/// The HTTP status of a daemon's error answer.
pub fn status(e: &ApiError) -> Option<u16> {
    match e {
        ApiError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The daemon answered 404: no such container, image, network or volume.
pub fn is_not_found(e: &ApiError) -> bool {
    status(e) == Some(404)
}

/// The daemon went away or stopped answering (a transport error or a timeout), as opposed
/// to answering with an error.
pub fn is_lost(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::HyperLegacyError { .. }
            | ApiError::IOError { .. }
            | ApiError::HyperResponseError { .. }
            | ApiError::RequestTimeoutError
            | ApiError::SocketNotFoundError(_)
    )
}

/// The innermost cause's message (a transport error wraps the one that says what happened).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_that_take_too_long_fail_as_timeouts() {
        let rt = runtime().unwrap();
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, ApiError>(1)
        };
        let r = block_on_rt(rt, within(Duration::from_millis(20), slow));
        assert!(matches!(r, Err(ApiError::RequestTimeoutError)), "{r:?}");
        assert!(is_lost(&r.unwrap_err()));
        let fast = async { Ok::<_, ApiError>(2) };
        assert_eq!(
            block_on_rt(rt, within(Duration::from_secs(5), fast)).unwrap(),
            2
        );
    }

    #[test]
    fn block_on_works_inside_another_runtime() {
        let rt = runtime().unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let v = outer.block_on(async { block_on_rt(rt, async { 7 }) });
        assert_eq!(v, 7);
    }

    #[test]
    fn statuses_and_losses_are_told_apart() {
        let nf = ApiError::DockerResponseServerError {
            status_code: 404,
            message: "no such image".into(),
        };
        assert!(is_not_found(&nf) && !is_lost(&nf));
        assert_eq!(status(&nf), Some(404));
        assert!(is_lost(&ApiError::RequestTimeoutError));
        assert_eq!(status(&ApiError::RequestTimeoutError), None);
    }

    #[test]
    fn an_unreachable_daemon_is_named_in_one_line() {
        let dir = std::env::temp_dir().join(format!("pare-docker-test-{}", std::process::id()));
        let host = format!("unix://{}/no.sock", dir.display());
        let e = Client::connect_with_host(&host, Duration::from_secs(2)).unwrap_err();
        let text = pare_progress::chain(&e);
        assert!(text.starts_with(&host), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn chain_joins_causes_once() {
        let inner = std::io::Error::other("refused");
        let e = ConnectError::Runtime { source: inner };
        assert_eq!(
            pare_progress::chain(&e),
            "tokio runtime for the docker client: refused"
        );
    }
}
