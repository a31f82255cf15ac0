//! What falls due at a step: which of the metrics line, the sample grid, the quality
//! evaluation and the checkpoint the loop does after it. The rules live here, apart from
//! the loop, so that they read in one place and are tested without training anything.

use crate::config::Intervals;

/// The run's intervals and length, which decide what falls due at each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Schedule {
    every: Intervals,
    /// The evaluation interval; `None` when the run has no evaluation classifier.
    eval_every: Option<usize>,
    total_steps: usize,
}

/// What happened at a step that brings the interval work forward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Events {
    /// The divergence watch warned.
    pub(super) warning: bool,
    /// The generator's quality was measured.
    pub(super) evaluated: bool,
    /// The run stops after this step (Ctrl-C, `--until-fid`, `--patience`).
    pub(super) stopping: bool,
}

/// The work due after a step (besides the evaluation, see [`Schedule::evaluate`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Due {
    /// A metrics line (metrics.jsonl, TensorBoard, the progress bar or a log line).
    pub(super) log: bool,
    /// A sample grid `samples/step-NNNNNNN.png`.
    pub(super) sample: bool,
    /// A checkpoint.
    pub(super) checkpoint: bool,
}

impl Schedule {
    /// The schedule of a run with intervals `every` that trains up to `total_steps`,
    /// evaluating every `eval_every` steps when it has an evaluation classifier.
    pub(super) fn new(every: Intervals, eval_every: Option<usize>, total_steps: usize) -> Self {
        Self {
            every,
            eval_every,
            total_steps,
        }
    }

    /// The step the run trains up to.
    pub(super) fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Whether a new run saves a checkpoint of its untrained weights before the first
    /// step (when it checkpoints at all): a run that diverges in its first steps can still
    /// be resumed with lower learning rates, as the divergence error advises.
    pub(super) fn checkpoint_at_start(&self) -> bool {
        self.every.checkpoint > 0
    }

    /// Whether the generator's quality is measured after `step`: on the evaluation
    /// interval and after the last step, when the run has a classifier.
    pub(super) fn evaluate(&self, step: usize) -> bool {
        self.eval_every
            .is_some_and(|every| on_interval(every, step) || step == self.total_steps)
    }

    /// The work due after `step`, given what happened at it.
    pub(super) fn due(&self, step: usize, events: Events) -> Due {
        Due {
            log: on_interval(self.every.log, step)
                || events.warning
                || events.stopping
                || events.evaluated
                || step == self.total_steps,
            sample: on_interval(self.every.sample, step),
            checkpoint: on_interval(self.every.checkpoint, step) || events.stopping,
        }
    }

    /// Whether the run still saves a checkpoint once its loop has ended at `step`: unless
    /// the newest checkpoint it has (`saved_at`) is of that step already.
    pub(super) fn final_checkpoint(saved_at: Option<usize>, step: usize) -> bool {
        saved_at != Some(step)
    }
}

/// Whether `step` falls on an interval of `every` steps (0: never).
fn on_interval(every: usize, step: usize) -> bool {
    every > 0 && step.is_multiple_of(every)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(log: usize, sample: usize, checkpoint: usize, eval: Option<usize>) -> Schedule {
        Schedule::new(
            Intervals {
                log,
                sample,
                checkpoint,
            },
            eval,
            100,
        )
    }

    #[test]
    fn intervals_fall_on_their_multiples() {
        let s = schedule(10, 25, 50, None);
        let quiet = Events::default();
        assert_eq!(
            s.due(20, quiet),
            Due {
                log: true,
                sample: false,
                checkpoint: false
            }
        );
        assert_eq!(
            s.due(50, quiet),
            Due {
                log: true,
                sample: true,
                checkpoint: true
            }
        );
        assert_eq!(s.due(7, quiet), Due::default());
    }

    #[test]
    fn zero_turns_an_interval_off() {
        let s = schedule(0, 0, 0, Some(0));
        for step in [1, 10, 64, 99] {
            assert_eq!(s.due(step, Events::default()), Due::default());
            assert!(!s.evaluate(step));
        }
        assert!(!s.checkpoint_at_start());
    }

    #[test]
    fn the_last_step_is_logged_and_evaluated() {
        let s = schedule(0, 0, 0, Some(30));
        assert!(s.due(100, Events::default()).log);
        assert!(s.evaluate(100));
        assert!(s.evaluate(30));
        assert!(!s.evaluate(31));
        // No sample grid or checkpoint of its own: the run's end saves those.
        let last = s.due(100, Events::default());
        assert!(!last.sample && !last.checkpoint);
    }

    #[test]
    fn without_a_classifier_nothing_is_evaluated() {
        let s = schedule(10, 10, 10, None);
        assert!(!s.evaluate(10));
        assert!(!s.evaluate(100));
    }

    #[test]
    fn events_bring_the_log_forward_and_a_stop_saves_a_checkpoint() {
        let s = schedule(10, 10, 10, Some(10));
        let warned = Events {
            warning: true,
            ..Events::default()
        };
        assert_eq!(
            s.due(3, warned),
            Due {
                log: true,
                ..Due::default()
            }
        );
        let evaluated = Events {
            evaluated: true,
            ..Events::default()
        };
        assert!(s.due(3, evaluated).log);
        assert!(!s.due(3, evaluated).checkpoint);
        let stopping = Events {
            stopping: true,
            ..Events::default()
        };
        assert_eq!(
            s.due(3, stopping),
            Due {
                log: true,
                sample: false,
                checkpoint: true
            }
        );
    }

    #[test]
    fn the_final_step_is_not_saved_twice() {
        assert!(!Schedule::final_checkpoint(Some(100), 100));
        assert!(Schedule::final_checkpoint(Some(50), 100));
        assert!(Schedule::final_checkpoint(None, 100));
        assert!(schedule(0, 0, 1000, None).checkpoint_at_start());
    }
}
