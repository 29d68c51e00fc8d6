//! A frontend started by `--spawn`, in its own process group so that everything it starts is
//! stopped with it.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a spawned group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// A spawned command; dropping it stops its whole process group.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
}

impl Spawned {
    /// Runs `command` with `sh -c 'exec …'` (so the PID is the command itself) in a new process
    /// group; its output goes to our stderr so stdout stays a clean table.
    pub fn start(command: &str) -> std::io::Result<Self> {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {command}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(std::io::stderr())
            .spawn()?;
        Ok(Self { child })
    }

    /// The PID of the spawned command (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the command already ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    fn signal_group(&self, signal: libc::c_int) {
        if let Ok(pgid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill has no memory-safety preconditions; the negative id addresses only the
            // process group this struct created (process_group(0) made pgid == pid).
            unsafe {
                libc::kill(-pgid, signal);
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.signal_group(libc::SIGTERM);
            let deadline = Instant::now() + TERM_GRACE;
            while self.exited().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Children of the command may outlive it; the group signal reaches them too.
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }
}
