//! Random output tokens with an explicit EOS policy.
//!
//! Policy: ordinary tokens are drawn uniformly from `0..vocab_size`, skipping the request's
//! EOS ids, so a random draw never ends a request by accident. Once the request has produced
//! at least `min_tokens` tokens, and unless it sets `ignore_eos` or has no EOS ids, each token
//! is instead its first EOS id with probability `eos_probability`. `max_tokens` always ends
//! the request.

use rand::Rng;
use rand::rngs::StdRng;
use stator_tokens::Token;

use crate::sequence::Sequence;

/// The next output token of `seq`, and whether it is an EOS token.
pub(crate) fn next_token(
    rng: &mut StdRng,
    seq: &Sequence,
    vocab_size: u32,
    eos_probability: f64,
) -> (Token, bool) {
    let may_stop = !seq.ignore_eos && seq.outputs() >= seq.min_tokens;
    if let Some(&eos) = seq.eos_token_ids.first()
        && may_stop
        && eos_probability > 0.0
        && rng.random::<f64>() < eos_probability
    {
        return (eos, true);
    }
    let vocab = vocab_size.max(1);
    let mut token = rng.random_range(0..vocab);
    // Step past EOS ids; bounded so a vocabulary made only of EOS ids cannot loop forever.
    for _ in 0..=seq.eos_token_ids.len() {
        if !seq.eos_token_ids.contains(&token) {
            break;
        }
        token = (token + 1) % vocab;
    }
    (token, false)
}
