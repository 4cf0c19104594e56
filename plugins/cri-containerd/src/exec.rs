//! Exec through containerd's exec API, with the process's stdio on FIFOs
//! that the driver creates and the shim opens. A FIFO's read side opens once
//! the shim opens the write side, and reads to EOF when the process and its
//! children are gone, so readers run on blocking threads; when the exec
//! fails before the shim opened them, the driver opens the write side itself
//! to release them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::{
    CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, GetContainerRequest, KillRequest,
    ResizePtyRequest, StartRequest, WaitRequest,
};
use kerno_proto::runtime::v1 as pb;
use nix::sys::stat::Mode;
use oci_spec::runtime::Process;
use prost_types::Any;
use tokio::sync::mpsc;

use crate::Runtime;
use crate::error::{Error, Result};

const PROCESS_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// How long closing an exec's stdin waits for the input sent before it to
/// be written (the FIFO's writer opens only once the process reads).
const STDIN_DRAIN: Duration = Duration::from_secs(5);

/// The FIFOs of one exec.
struct ExecIo {
    dir: PathBuf,
    stdin: Option<PathBuf>,
    stdout: PathBuf,
    stderr: Option<PathBuf>,
}

impl ExecIo {
    fn create(root: &Path, id: &str, stdin: bool, stderr: bool) -> Result<Self> {
        let dir = root.join("exec").join(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let fifo = |name: &str| -> Result<PathBuf> {
            let p = dir.join(name);
            nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600))?;
            Ok(p)
        };
        Ok(Self {
            stdin: if stdin { Some(fifo("stdin")?) } else { None },
            stdout: fifo("stdout")?,
            stderr: if stderr { Some(fifo("stderr")?) } else { None },
            dir,
        })
    }

    fn path(p: &Option<PathBuf>) -> String {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// Opens the other side of every FIFO without blocking, so blocked
    /// openers return.
    fn release(&self) {
        let open = |p: &Path, write: bool| {
            let _ = std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(p);
        };
        use std::os::unix::fs::OpenOptionsExt;
        open(&self.stdout, true);
        if let Some(e) = &self.stderr {
            open(e, true);
        }
        if let Some(i) = &self.stdin {
            open(i, false);
        }
    }
}

impl Drop for ExecIo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads a FIFO to EOF on a blocking thread, sending chunks as they come.
fn pump(path: PathBuf, tx: mpsc::UnboundedSender<Vec<u8>>) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let Ok(mut f) = std::fs::File::open(&path) else {
            return;
        };
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// A started exec.
struct Started {
    exec_id: String,
    io: ExecIo,
    stdout: mpsc::UnboundedReceiver<Vec<u8>>,
    stderr: mpsc::UnboundedReceiver<Vec<u8>>,
    pumps: Vec<tokio::task::JoinHandle<()>>,
}

impl Runtime {
    async fn exec_process(&self, container_id: &str, cmd: &[String], tty: bool) -> Result<Any> {
        if cmd.is_empty() {
            return Err(Error::InvalidArgument("exec needs a command".into()));
        }
        let container = self
            .cd
            .containers()
            .get(self.cd.req(GetContainerRequest {
                id: container_id.to_owned(),
            }))
            .await
            .map_err(|s| match s.code() {
                tonic::Code::NotFound => {
                    Error::NotFound(format!("container {container_id} not found"))
                }
                _ => self.cd.err("get container", s),
            })?
            .into_inner()
            .container
            .ok_or_else(|| Error::NotFound(format!("container {container_id} not found")))?;
        let spec: serde_json::Value = container
            .spec
            .as_ref()
            .and_then(|s| serde_json::from_slice(&s.value).ok())
            .ok_or_else(|| Error::Internal(format!("container {container_id} has no spec")))?;
        let mut process: Process = serde_json::from_value(spec["process"].clone())
            .map_err(|e| Error::Internal(format!("container {container_id}: process: {e}")))?;
        process.set_args(Some(cmd.to_vec()));
        process.set_terminal(Some(tty));
        let value = serde_json::to_vec(&process)
            .map_err(|e| Error::Internal(format!("encoding exec process: {e}")))?;
        Ok(Any {
            type_url: PROCESS_TYPE.to_owned(),
            value,
        })
    }

    async fn start_exec(&self, start: &pb::ExecStart) -> Result<Started> {
        let spec = self
            .exec_process(&start.container_id, &start.cmd, start.tty)
            .await?;
        let exec_id = format!("exec-{}", uuid::Uuid::new_v4().simple());
        let io = ExecIo::create(&self.state_dir, &exec_id, start.stdin, !start.tty)?;
        let (out_tx, stdout) = mpsc::unbounded_channel();
        let (err_tx, stderr) = mpsc::unbounded_channel();
        let mut pumps = vec![pump(io.stdout.clone(), out_tx)];
        if let Some(e) = &io.stderr {
            pumps.push(pump(e.clone(), err_tx));
        }
        let created = self
            .cd
            .tasks()
            .exec(self.cd.req(ExecProcessRequest {
                container_id: start.container_id.clone(),
                stdin: ExecIo::path(&io.stdin),
                stdout: io.stdout.display().to_string(),
                stderr: ExecIo::path(&io.stderr),
                terminal: start.tty,
                spec: Some(spec),
                exec_id: exec_id.clone(),
            }))
            .await;
        let started = match created {
            Ok(_) => self
                .cd
                .tasks()
                .start(self.cd.req(StartRequest {
                    container_id: start.container_id.clone(),
                    exec_id: exec_id.clone(),
                }))
                .await
                .map(|_| ()),
            Err(s) => Err(s),
        };
        if let Err(s) = started {
            io.release();
            self.delete_exec(&start.container_id, &exec_id).await;
            return Err(match s.code() {
                tonic::Code::NotFound | tonic::Code::FailedPrecondition => {
                    Error::FailedPrecondition(format!(
                        "container {} is not running: {}",
                        start.container_id,
                        s.message()
                    ))
                }
                _ => self.cd.err("exec", s),
            });
        }
        Ok(Started {
            exec_id,
            io,
            stdout,
            stderr,
            pumps,
        })
    }

    async fn delete_exec(&self, container_id: &str, exec_id: &str) {
        let _ = self
            .cd
            .tasks()
            .delete_process(self.cd.req(DeleteProcessRequest {
                container_id: container_id.to_owned(),
                exec_id: exec_id.to_owned(),
            }))
            .await;
    }

    async fn wait_exec(
        &self,
        container_id: &str,
        exec_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<i32>> {
        let mut tasks = self.cd.tasks();
        let wait = tasks.wait(self.cd.req(WaitRequest {
            container_id: container_id.to_owned(),
            exec_id: exec_id.to_owned(),
        }));
        let result = match timeout {
            Some(t) => match tokio::time::timeout(t, wait).await {
                Ok(r) => r,
                Err(_) => return Ok(None),
            },
            None => wait.await,
        };
        let resp = result.map_err(|s| self.cd.err("wait exec", s))?;
        Ok(Some(resp.into_inner().exit_status as i32))
    }

    /// Runs a command in a container and collects its output.
    pub async fn exec_sync(&self, req: &pb::ExecSyncRequest) -> Result<pb::ExecSyncResponse> {
        let start = pb::ExecStart {
            container_id: req.container_id.clone(),
            cmd: req.cmd.clone(),
            tty: false,
            stdin: false,
        };
        let mut started = self.start_exec(&start).await?;
        let timeout =
            (req.timeout_seconds > 0).then(|| Duration::from_secs(req.timeout_seconds as u64));
        let exit = match self
            .wait_exec(&req.container_id, &started.exec_id, timeout)
            .await?
        {
            Some(code) => code,
            None => {
                let _ = self
                    .cd
                    .tasks()
                    .kill(self.cd.req(KillRequest {
                        container_id: req.container_id.clone(),
                        exec_id: started.exec_id.clone(),
                        signal: nix::sys::signal::Signal::SIGKILL as u32,
                        all: false,
                    }))
                    .await;
                let _ = self
                    .wait_exec(
                        &req.container_id,
                        &started.exec_id,
                        Some(Duration::from_secs(5)),
                    )
                    .await;
                started.io.release();
                self.delete_exec(&req.container_id, &started.exec_id).await;
                return Err(Error::Internal(format!(
                    "command timed out after {}s",
                    req.timeout_seconds
                )));
            }
        };
        // Output may still be in flight; the pumps end at EOF. A background
        // child holding stdout open would keep them going, so bound the wait.
        let pumps = std::mem::take(&mut started.pumps);
        if tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(pumps))
            .await
            .is_err()
        {
            started.io.release();
        }
        let mut stdout = Vec::new();
        while let Ok(chunk) = started.stdout.try_recv() {
            stdout.extend(chunk);
        }
        let mut stderr = Vec::new();
        while let Ok(chunk) = started.stderr.try_recv() {
            stderr.extend(chunk);
        }
        self.delete_exec(&req.container_id, &started.exec_id).await;
        Ok(pb::ExecSyncResponse {
            stdout,
            stderr,
            exit_code: exit,
        })
    }

    /// Interactive exec: runs until the process exits, forwarding input and
    /// streaming output to `out`, and ends with the exit code.
    pub async fn exec_interactive(
        &self,
        start: pb::ExecStart,
        mut input: tonic::Streaming<pb::ExecInput>,
        out: mpsc::Sender<Result<pb::ExecOutput, tonic::Status>>,
    ) -> Result<()> {
        use pb::exec_input::Input;
        use pb::exec_output::Output;
        let mut started = self.start_exec(&start).await?;
        let container_id = start.container_id.clone();
        let exec_id = started.exec_id.clone();

        // Input: stdin bytes to the FIFO, resizes and close to containerd.
        let stdin_path = started.io.stdin.clone();
        let rt = self.clone();
        let (cid, eid) = (container_id.clone(), exec_id.clone());
        let input_task = tokio::spawn(async move {
            let (stdin_tx, stdin_rx) = std::sync::mpsc::channel::<Option<Vec<u8>>>();
            let mut writer = stdin_path.map(|path| {
                tokio::task::spawn_blocking(move || {
                    let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else {
                        return;
                    };
                    while let Ok(Some(data)) = stdin_rx.recv() {
                        if f.write_all(&data).is_err() {
                            return;
                        }
                    }
                })
            });
            while let Ok(Some(msg)) = input.message().await {
                match msg.input {
                    Some(Input::Stdin(data)) => {
                        let _ = stdin_tx.send(Some(data));
                    }
                    Some(Input::Resize(size)) => {
                        let _ = rt
                            .cd
                            .tasks()
                            .resize_pty(rt.cd.req(ResizePtyRequest {
                                container_id: cid.clone(),
                                exec_id: eid.clone(),
                                width: size.width,
                                height: size.height,
                            }))
                            .await;
                    }
                    Some(Input::CloseStdin(_)) => {
                        let _ = stdin_tx.send(None);
                        // Everything sent before the close must reach the
                        // process first: wait for the writer to finish.
                        if let Some(writer) = writer.take() {
                            let _ = tokio::time::timeout(STDIN_DRAIN, writer).await;
                        }
                        let _ = rt
                            .cd
                            .tasks()
                            .close_io(rt.cd.req(CloseIoRequest {
                                container_id: cid.clone(),
                                exec_id: eid.clone(),
                                stdin: true,
                            }))
                            .await;
                    }
                    Some(Input::Start(_)) | None => {}
                }
            }
        });

        // Output: forward chunks while waiting for the exit.
        let wait = self.wait_exec(&container_id, &exec_id, None);
        tokio::pin!(wait);
        let mut stdout_open = true;
        let mut stderr_open = started.io.stderr.is_some();
        let exit = loop {
            tokio::select! {
                chunk = started.stdout.recv(), if stdout_open => match chunk {
                    Some(d) => { let _ = out.send(Ok(pb::ExecOutput { output: Some(Output::Stdout(d)) })).await; }
                    None => stdout_open = false,
                },
                chunk = started.stderr.recv(), if stderr_open => match chunk {
                    Some(d) => { let _ = out.send(Ok(pb::ExecOutput { output: Some(Output::Stderr(d)) })).await; }
                    None => stderr_open = false,
                },
                code = &mut wait => break code,
            }
        };
        let pumps = std::mem::take(&mut started.pumps);
        if tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(pumps))
            .await
            .is_err()
        {
            started.io.release();
        }
        while let Ok(d) = started.stdout.try_recv() {
            let _ = out
                .send(Ok(pb::ExecOutput {
                    output: Some(Output::Stdout(d)),
                }))
                .await;
        }
        while let Ok(d) = started.stderr.try_recv() {
            let _ = out
                .send(Ok(pb::ExecOutput {
                    output: Some(Output::Stderr(d)),
                }))
                .await;
        }
        input_task.abort();
        started.io.release();
        self.delete_exec(&container_id, &exec_id).await;
        let code = exit?.unwrap_or(-1);
        let _ = out
            .send(Ok(pb::ExecOutput {
                output: Some(Output::ExitCode(code)),
            }))
            .await;
        Ok(())
    }
}
