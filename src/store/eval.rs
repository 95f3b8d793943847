//! A script call (`EVALSHA`) written straight into one command buffer.
//!
//! redis-rs's `ScriptInvocation` copies every key and argument into a vector
//! of its own (an allocation each) and then again into the command: about
//! 6,000 instructions per snapshot of the worker's 190,000 per event
//! (callgrind). [`Eval`] writes each once, and like `ScriptInvocation` it
//! loads the script when Redis does not know it (`NOSCRIPT`: a restarted or
//! failed-over Redis, a `SCRIPT FLUSH`) and runs the same command again.

use redis::{Cmd, FromRedisValue, RedisResult, Script, ToRedisArgs};

pub(super) struct Eval<'s> {
    script: &'s Script,
    cmd: Cmd,
}

impl<'s> Eval<'s> {
    /// A call of `script` on `keys`; its arguments follow with [`Eval::arg`].
    pub(super) fn new<K: AsRef<str>>(script: &'s Script, keys: &[K]) -> Self {
        let size = keys.iter().map(|k| k.as_ref().len()).sum::<usize>();
        let mut cmd = Cmd::with_capacity(3 + keys.len() + 8, size + 256);
        cmd.arg("EVALSHA").arg(script.get_hash()).arg(keys.len());
        for key in keys {
            cmd.arg(key.as_ref());
        }
        Self { script, cmd }
    }

    pub(super) fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Runs the call; when Redis does not know the script, loads it and runs
    /// the call once more.
    pub(super) async fn run<T: FromRedisValue>(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
    ) -> RedisResult<T> {
        match self.cmd.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.script.prepare_invoke().load_async(conn).await?;
                self.cmd.query_async(conn).await
            }
            other => other,
        }
    }
}
