//! One request's state inside the simulator: its tokens, progress and the blocks it holds.

use stator_tokens::{SequenceHash, Token, TokenBlockSequence};

use crate::kv::BlockManager;
use crate::request::{MockRequest, RequestId};

/// A live request: waiting (holding no blocks) or running.
#[derive(Debug, Clone)]
pub(crate) struct Sequence {
    pub(crate) id: RequestId,
    /// Prompt then output tokens, with block hashes.
    pub(crate) tokens: TokenBlockSequence,
    pub(crate) prompt_len: usize,
    pub(crate) max_tokens: usize,
    pub(crate) min_tokens: usize,
    pub(crate) ignore_eos: bool,
    pub(crate) eos_token_ids: Vec<Token>,
    /// Tokens whose KV is in the cache.
    pub(crate) num_computed: usize,
    /// Registered blocks referenced, in block order (blocks `0..held.len()`).
    pub(crate) held: Vec<SequenceHash>,
    /// Private blocks after the held ones.
    pub(crate) private: usize,
    /// Prompt-cache hit at first scheduling.
    pub(crate) cached_tokens: Option<usize>,
    /// Tokens scheduled in the current pass.
    pub(crate) step_tokens: usize,
}

impl Sequence {
    /// A waiting sequence for `request` with an already validated `max_tokens`.
    pub(crate) fn new(request: MockRequest, max_tokens: u32, block_size: usize) -> Self {
        Self {
            id: request.id,
            tokens: TokenBlockSequence::new(&request.token_ids, block_size, request.salt),
            prompt_len: request.token_ids.len(),
            max_tokens: max_tokens as usize,
            min_tokens: request.min_tokens as usize,
            ignore_eos: request.ignore_eos,
            eos_token_ids: request.eos_token_ids,
            num_computed: 0,
            held: Vec::new(),
            private: 0,
            cached_tokens: None,
            step_tokens: 0,
        }
    }

    /// Prompt plus output tokens so far.
    pub(crate) fn len(&self) -> usize {
        self.tokens.tokens().len()
    }

    /// Output tokens so far.
    pub(crate) fn outputs(&self) -> usize {
        self.len() - self.prompt_len
    }

    /// Whether the next pass for this sequence prefills (or recomputes) rather than decodes.
    pub(crate) fn is_prefilling(&self) -> bool {
        self.outputs() == 0 || self.num_computed + 1 < self.len()
    }

    /// Blocks held, registered or private.
    pub(crate) fn blocks_held(&self) -> usize {
        self.held.len() + self.private
    }

    /// Register the blocks that the last pass filled (prefix caching only).
    pub(crate) fn register_full_blocks(&mut self, kv: &mut BlockManager) {
        let full = self.num_computed / self.tokens.block_size();
        for index in self.held.len()..full {
            let parent = index.checked_sub(1).map(|p| self.held[p]);
            let hash = self.tokens.sequence_hashes()[index];
            kv.register(parent, hash, self.tokens.local_hashes()[index]);
            self.held.push(hash);
            self.private -= 1;
        }
    }

    /// Give every block back, tail first so the tail is evicted before the prefix, and
    /// forget the computed KV (the sequence will recompute from its prompt cache hit).
    pub(crate) fn release(&mut self, kv: &mut BlockManager) {
        kv.release_private(self.private);
        for &hash in self.held.iter().rev() {
            kv.release(hash);
        }
        self.held.clear();
        self.private = 0;
        self.num_computed = 0;
        self.step_tokens = 0;
    }
}
