//! One forward pass: vLLM-v1-style scheduling (running first, then FCFS admission, LIFO
//! preemption), execution (KV registration, output tokens) and timing.

use crate::output::{StepOutput, TokenOutput};
use crate::request::FinishReason;
use crate::sampler;
use crate::simulator::Simulator;
use crate::timing;

impl Simulator {
    /// Run one forward pass and report what it produced.
    ///
    /// Scheduling follows vLLM v1: running requests are served first within the
    /// `max_num_batched_tokens` budget (one token per decode, `min(remaining, budget)` per
    /// prefill chunk); when blocks run out the most recently admitted running request is
    /// preempted (LIFO: blocks freed, re-queued at the front of the waiting queue, recomputed
    /// later). Only in a pass without preemption are waiting requests admitted, FCFS, while
    /// `running < max_num_seqs` and budget and blocks last; a request that does not fit stays
    /// at the head of the queue.
    pub fn step(&mut self) -> StepOutput {
        let mut out = StepOutput::default();
        let budget = self.schedule_running(&mut out);
        if out.preempted.is_empty() {
            self.admit_waiting(budget);
        }
        self.execute(&mut out);
        out.events = self.drain_events();
        out
    }

    /// Give each running sequence its tokens for this pass, preempting from the tail when
    /// blocks run out. Returns the token budget left.
    fn schedule_running(&mut self, out: &mut StepOutput) -> usize {
        let block_size = self.config.block_size;
        let mut budget = self.config.max_num_batched_tokens;
        for seq in &mut self.running {
            seq.step_tokens = 0;
        }
        let mut index = 0;
        while index < self.running.len() && budget > 0 {
            let seq = &self.running[index];
            let tokens = (seq.len() - seq.num_computed).min(budget);
            let needed = (seq.num_computed + tokens).div_ceil(block_size) - seq.blocks_held();
            if self.kv.allocate(needed).is_ok() {
                let seq = &mut self.running[index];
                seq.private += needed;
                seq.step_tokens = tokens;
                budget -= tokens;
                index += 1;
                continue;
            }
            let mut victim = self
                .running
                .pop()
                .expect("the sequence being scheduled is running");
            victim.release(&mut self.kv);
            out.preempted.push(victim.id);
            self.waiting.push_front(victim);
        }
        budget
    }

    /// Admit waiting sequences FCFS while sequences, budget and blocks last.
    fn admit_waiting(&mut self, mut budget: usize) {
        let block_size = self.config.block_size;
        while budget > 0 && self.running.len() < self.config.max_num_seqs {
            let Some(seq) = self.waiting.front() else {
                break;
            };
            let len = seq.len();
            // At least one token is always computed, so a fully cached prompt still recomputes
            // its last block (as vLLM does).
            let hit = self
                .kv
                .match_prefix(&seq.tokens.sequence_hashes()[..(len - 1) / block_size]);
            let computed = hit.blocks * block_size;
            let remaining = len - computed;
            if !self.config.enable_chunked_prefill && remaining > budget {
                break;
            }
            let tokens = remaining.min(budget);
            let needed = (computed + tokens).div_ceil(block_size) - hit.blocks;
            if needed + hit.inactive > self.kv.available() {
                break;
            }
            let mut seq = self
                .waiting
                .pop_front()
                .expect("the front sequence was just inspected");
            for index in 0..hit.blocks {
                let hash = seq.tokens.sequence_hashes()[index];
                self.kv.acquire(hash);
                seq.held.push(hash);
            }
            self.kv
                .allocate(needed)
                .expect("capacity was checked before acquiring the hits");
            seq.private = needed;
            seq.num_computed = computed;
            seq.step_tokens = tokens;
            seq.cached_tokens.get_or_insert(computed);
            budget -= tokens;
            self.running.push(seq);
        }
    }

    /// Run the pass: advance computed tokens, register filled blocks, sample output tokens,
    /// retire finished sequences and time the pass.
    fn execute(&mut self, out: &mut StepOutput) {
        let mut decode_context = 0;
        let mut finished = Vec::new();
        for (index, seq) in self.running.iter_mut().enumerate() {
            if seq.step_tokens == 0 {
                continue;
            }
            if seq.is_prefilling() {
                out.prefill_tokens += seq.step_tokens;
            } else {
                out.decode_requests += 1;
                decode_context += seq.len();
            }
            seq.num_computed += seq.step_tokens;
            seq.step_tokens = 0;
            if self.kv.prefix_caching() {
                seq.register_full_blocks(&mut self.kv);
            }
            if seq.num_computed < seq.len() {
                continue;
            }
            let (token_id, eos) = sampler::next_token(
                &mut self.rng,
                seq,
                self.config.vocab_size,
                self.config.eos_probability,
            );
            seq.tokens.push(token_id);
            let finish = if eos {
                Some(FinishReason::Eos)
            } else if seq.outputs() >= seq.max_tokens {
                Some(FinishReason::Length)
            } else {
                None
            };
            if let Some(reason) = finish {
                finished.push((index, reason));
            }
            out.tokens.push(TokenOutput {
                request_id: seq.id,
                token_id,
                finish,
            });
        }
        for &(index, reason) in finished.iter().rev() {
            let mut seq = self.running.remove(index);
            seq.release(&mut self.kv);
            let usage = self.retire(&seq, reason);
            out.finished.push(usage);
        }
        out.finished.reverse();
        let total_kv_tokens = (self.config.num_gpu_blocks * self.config.block_size) as f64;
        let decode_usage =
            (out.decode_requests > 0).then(|| decode_context as f64 / total_kv_tokens);
        out.duration = timing::pass_duration(
            out.prefill_tokens,
            decode_usage,
            self.config.speedup_ratio,
            self.config.decode_speedup_ratio,
        );
    }
}
