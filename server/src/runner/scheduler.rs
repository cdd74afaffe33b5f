//! A FIFO queue in front of another [`Runner`]: runs wait for a free slot (a GPU, or one
//! of the CPU slots when there is none), get `CUDA_VISIBLE_DEVICES` for it, and give it
//! back when they end, however they end (a guard releases it on cancel, error, panic, or
//! a dropped future). With [`SlotScheduler::with_machine_gpus`], a GPU slot is also taken
//! machine-wide ([`gpu_lease`]): a run whose GPU another aisci process holds waits for it
//! (or takes another free GPU of its own list), reported as [`QueueEvent::Held`].
//!
//! [`gpu_lease`]: super::gpu_lease

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::gpu_lease::{Lease, MachineGpus};
use super::gpus::Gpu;
use super::{Attachment, ExitKind, Ran, RunError, RunEvent, RunEvents, RunOutcome, RunSpec, Runner};
use crate::config::RunSettings;

/// One place a run can execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Position in the scheduler's slot list.
    pub id: usize,
    /// The `CUDA_VISIBLE_DEVICES` value; None for a CPU slot (which gets `""`).
    pub gpu: Option<String>,
}

impl Slot {
    pub fn cuda_visible_devices(&self) -> &str {
        self.gpu.as_deref().unwrap_or("")
    }
}

/// The slots for a GPU list: `runs_per_gpu` per GPU (GPU by GPU, so that the first runs
/// spread over different GPUs), else `cpu_slots` CPU slots.
pub fn slots_for(gpus: &[Gpu], runs_per_gpu: u32, cpu_slots: u32) -> Vec<Slot> {
    let gpu_ids: Vec<Option<String>> = if gpus.is_empty() {
        (0..cpu_slots.max(1)).map(|_| None).collect()
    } else {
        (0..runs_per_gpu.max(1))
            .flat_map(|_| gpus.iter().map(|g| Some(g.index.clone())))
            .collect()
    };
    gpu_ids
        .into_iter()
        .enumerate()
        .map(|(id, gpu)| Slot { id, gpu })
        .collect()
}

/// What happens to a run in the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueEvent {
    /// Waiting; `ahead` runs are queued before it.
    Queued {
        run: u64,
        ahead: usize,
    },
    Started {
        run: u64,
        slot: Slot,
        waited: Duration,
    },
    /// Cancelled while still queued; it never ran.
    Dequeued {
        run: u64,
    },
    /// Has its place in this process's queue, but another aisci process holds `gpu`:
    /// waits for it (said once per run).
    Held {
        run: u64,
        gpu: String,
        holder: String,
    },
    /// Ended; Err holds the runner's error message.
    Finished {
        run: u64,
        slot: Slot,
        exit: Result<ExitKind, String>,
    },
}

pub type Observer = Arc<dyn Fn(&QueueEvent) + Send + Sync>;

struct Waiter {
    run: u64,
    tx: oneshot::Sender<usize>,
}

#[derive(Default)]
struct State {
    /// Free slot ids, lowest first.
    free: Vec<usize>,
    waiting: VecDeque<Waiter>,
    next_run: u64,
}

struct Shared {
    slots: Vec<Slot>,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds valid state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives the slot to the first live waiter, else marks it free.
    fn release(&self, slot: usize) {
        let mut st = self.lock();
        while let Some(w) = st.waiting.pop_front() {
            if w.tx.send(slot).is_ok() {
                return;
            }
        }
        let at = st.free.partition_point(|s| *s < slot);
        st.free.insert(at, slot);
    }
}

/// Holds a slot; gives it back when dropped.
struct SlotGuard {
    shared: Arc<Shared>,
    slot: usize,
    /// The machine-wide place on the slot's GPU, when one is taken.
    lease: Option<Lease>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        // The machine-wide place first: a waiter of this process may take it next.
        self.lease = None;
        self.shared.release(self.slot);
    }
}

/// A place in the queue; leaving it (cancelled, or the future dropped) removes it, and
/// hands on a slot that was granted but not yet taken.
struct Ticket {
    shared: Arc<Shared>,
    run: u64,
    rx: Option<oneshot::Receiver<usize>>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        let granted = {
            let mut st = self.shared.lock();
            st.waiting.retain(|w| w.run != self.run);
            // Grants happen under the lock, so one is either in the channel now or never.
            rx.try_recv().ok()
        };
        if let Some(slot) = granted {
            self.shared.release(slot);
        }
    }
}

/// The scheduling [`Runner`].
#[derive(Clone)]
pub struct SlotScheduler<R> {
    inner: R,
    shared: Arc<Shared>,
    observer: Option<Observer>,
    machine: Option<MachineGpus>,
}

/// How often a run waiting for a GPU another aisci holds looks again.
const HELD_POLL: Duration = Duration::from_millis(200);

impl<R: Runner> SlotScheduler<R> {
    pub fn new(inner: R, slots: Vec<Slot>) -> Self {
        let slots = if slots.is_empty() {
            slots_for(&[], 1, 1)
        } else {
            slots
                .into_iter()
                .enumerate()
                .map(|(id, s)| Slot { id, gpu: s.gpu })
                .collect()
        };
        let state = State {
            free: (0..slots.len()).collect(),
            ..State::default()
        };
        Self {
            inner,
            shared: Arc::new(Shared {
                slots,
                state: Mutex::new(state),
            }),
            observer: None,
            machine: None,
        }
    }

    /// GPU slots are also taken machine-wide, through the lock files of `gpus`.
    pub fn with_machine_gpus(mut self, gpus: MachineGpus) -> Self {
        self.machine = Some(gpus);
        self
    }

    /// Slots for `gpus` as `settings` (`runs_per_gpu`, `cpu_slots`) says, GPU slots shared
    /// with every aisci of this user on the machine (see [`super::gpu_lease`]); where its
    /// folder cannot be made, this process's own queue only, with a warning.
    pub fn for_gpus(inner: R, gpus: &[Gpu], settings: &RunSettings) -> Self {
        let s = Self::new(inner, slots_for(gpus, settings.runs_per_gpu, settings.cpu_slots));
        if gpus.is_empty() {
            return s;
        }
        match super::gpu_lease::default_dir() {
            Ok(dir) => s.with_machine_gpus(MachineGpus::new(dir, settings.runs_per_gpu)),
            Err(e) => {
                tracing::warn!(%e, "GPU slots are not shared with other aisci processes");
                s
            }
        }
    }

    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn slots(&self) -> &[Slot] {
        &self.shared.slots
    }

    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Runs waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.shared.lock().waiting.len()
    }

    fn emit(&self, e: QueueEvent) {
        if let Some(o) = &self.observer {
            o(&e);
        }
    }

    /// Waits (FIFO) for a slot; None when cancelled first.
    async fn acquire(
        &self,
        run: u64,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Option<SlotGuard> {
        let rx = {
            let mut st = self.shared.lock();
            if st.waiting.is_empty() && !st.free.is_empty() {
                let slot = st.free.remove(0);
                return Some(SlotGuard {
                    shared: self.shared.clone(),
                    slot,
                    lease: None,
                });
            }
            let (tx, rx) = oneshot::channel();
            let ahead = st.waiting.len();
            st.waiting.push_back(Waiter { run, tx });
            drop(st);
            self.emit(QueueEvent::Queued { run, ahead });
            events.on_event(RunEvent::Queued { ahead });
            rx
        };
        let mut ticket = Ticket {
            shared: self.shared.clone(),
            run,
            rx: Some(rx),
        };
        let got = tokio::select! {
            biased;
            slot = ticket.rx.as_mut().expect("receiver present") => slot.ok(),
            _ = cancel.cancelled() => None,
        };
        match got {
            Some(slot) => {
                ticket.rx = None;
                Some(SlotGuard {
                    shared: self.shared.clone(),
                    slot,
                    lease: None,
                })
            }
            // The ticket's drop leaves the queue (or passes on a slot granted meanwhile).
            None => None,
        }
    }

    /// With machine-wide GPUs: the place on the granted slot's GPU, or on the GPU of another
    /// free slot of ours (swapped for it); waits while other processes hold them all. False
    /// when cancelled first.
    async fn take_machine_place(
        &self,
        run: u64,
        guard: &mut SlotGuard,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> bool {
        let Some(machine) = &self.machine else {
            return true;
        };
        let mut said = false;
        loop {
            let Some(gpu) = self.shared.slots[guard.slot].gpu.clone() else {
                return true;
            };
            match machine.try_take(&gpu) {
                Ok(Ok(lease)) => {
                    guard.lease = Some(lease);
                    return true;
                }
                Ok(Err(holder)) => {
                    if let Some((slot, lease)) = self.other_free_place(machine, &gpu) {
                        let old = std::mem::replace(&mut guard.slot, slot);
                        guard.lease = Some(lease);
                        self.shared.release(old);
                        return true;
                    }
                    if !said {
                        said = true;
                        self.emit(QueueEvent::Held {
                            run,
                            gpu: gpu.clone(),
                            holder: holder.clone(),
                        });
                        events.on_event(RunEvent::Held { gpu, holder });
                    }
                }
                Err(e) => {
                    // The lock files are unusable: run with this process's queue alone.
                    tracing::warn!(%e, dir = %machine.dir().display(), "GPU lock file");
                    return true;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(HELD_POLL) => {}
                _ = cancel.cancelled() => return false,
            }
        }
    }

    /// A free slot of ours on a GPU other than `busy` whose machine-wide place is free now.
    fn other_free_place(&self, machine: &MachineGpus, busy: &str) -> Option<(usize, Lease)> {
        let mut st = self.shared.lock();
        for at in 0..st.free.len() {
            let slot = st.free[at];
            let Some(gpu) = self.shared.slots[slot].gpu.as_deref().filter(|g| *g != busy) else {
                continue;
            };
            if let Ok(Ok(lease)) = machine.try_take(gpu) {
                st.free.remove(at);
                return Some((slot, lease));
            }
        }
        None
    }
}

#[async_trait]
impl<R: Runner> Runner for SlotScheduler<R> {
    async fn run_with(&self, spec: &RunSpec, events: &dyn RunEvents, cancel: &CancellationToken) -> Ran {
        let queued_at = Instant::now();
        let run = {
            let mut st = self.shared.lock();
            st.next_run += 1;
            st.next_run
        };
        let mut guard = self.acquire(run, events, cancel).await;
        if let Some(g) = guard.as_mut() {
            if !self.take_machine_place(run, g, events, cancel).await {
                guard = None;
            }
        }
        let Some(guard) = guard else {
            self.emit(QueueEvent::Dequeued { run });
            return Ok(RunOutcome {
                exit: ExitKind::Cancelled,
                elapsed: queued_at.elapsed(),
                stdout_tail: String::new(),
                stderr_tail: String::new(),
                stdout_bytes: 0,
                stderr_bytes: 0,
                cuda_visible_devices: None,
            });
        };
        let slot = self.shared.slots[guard.slot].clone();
        self.emit(QueueEvent::Started {
            run,
            slot: slot.clone(),
            waited: queued_at.elapsed(),
        });
        events.on_event(RunEvent::Slot {
            gpu: slot.cuda_visible_devices().to_owned(),
        });
        let mut spec = spec.clone();
        spec.env.retain(|(k, _)| k != "CUDA_VISIBLE_DEVICES");
        spec.env
            .push(("CUDA_VISIBLE_DEVICES".into(), slot.cuda_visible_devices().into()));
        let result = self.inner.run_with(&spec, events, cancel).await;
        drop(guard);
        self.emit(QueueEvent::Finished {
            run,
            slot,
            exit: result.as_ref().map(|o| o.exit).map_err(|e| e.to_string()),
        });
        result
    }

    /// A re-attached run already holds its GPU: it bypasses the queue.
    async fn reattach(
        &self,
        attachment: &Attachment,
        spec: &RunSpec,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        self.inner.reattach(attachment, spec, events, cancel).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_spread_over_gpus_first() {
        let gpus = [Gpu::from_index("0"), Gpu::from_index("1")];
        let s = slots_for(&gpus, 2, 4);
        let ids: Vec<_> = s.iter().map(|s| s.cuda_visible_devices()).collect();
        assert_eq!(ids, ["0", "1", "0", "1"]);
        let cpu = slots_for(&[], 2, 3);
        assert_eq!(cpu.len(), 3);
        assert!(cpu.iter().all(|s| s.cuda_visible_devices().is_empty()));
    }
}
