//! The port forwarder into the container's net namespace.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sched::CloneFlags;

use super::process::wait_readable;
use super::syscall::{LinuxSyscall, Syscall};

/// A TCP forwarder: 127.0.0.1:random on the host → 127.0.0.1:port in the container net ns.
pub(super) struct Forwarder {
    pub(super) addr: SocketAddr,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    pub(super) fn spawn(netns: Arc<OwnedFd>, port: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pare-fwd-{port}"))
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    if !wait_readable(&LinuxSyscall, &listener, Duration::from_millis(100)) {
                        continue;
                    }
                    let Ok((client, _)) = listener.accept() else {
                        continue;
                    };
                    let ns = netns.clone();
                    let _ = std::thread::Builder::new()
                        .name(format!("pare-fwd-{port}-conn"))
                        .spawn(move || forward_conn(client, &ns, port));
                }
            })?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub(super) fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects to `port` on loopback in the calling thread's net ns: 127.0.0.1, then ::1. When
/// both fail, the IPv4 error (a refusal there means nothing listens; ::1 may not exist).
pub(super) fn connect_loopback(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout).or_else(
        |v4| {
            TcpStream::connect_timeout(&SocketAddr::from((Ipv6Addr::LOCALHOST, port)), timeout)
                .map_err(|_| v4)
        },
    )
}

pub(super) fn forward_conn(client: TcpStream, netns: &OwnedFd, port: u16) {
    // Only this thread enters the container's net ns; the socket created here lives there.
    if LinuxSyscall
        .setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
        .is_err()
    {
        return;
    }
    // Nothing listening yet: close the client, like docker-proxy does.
    let Ok(up) = connect_loopback(port, Duration::from_secs(5)) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (Ok(mut c_read), Ok(mut u_write)) = (client.try_clone(), up.try_clone()) else {
        return;
    };
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (up, client);
    let _ = std::io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
}
