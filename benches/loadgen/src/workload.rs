//! The shared-prefix chat workload: each request is one of `G` shared system prompts of about
//! `W` words plus about `U` words unique to the request, all derived from a seed.
//!
//! Words come from a fixed list of short common English words, most of which are one token in
//! BPE vocabularies, so `W` words ≈ `W` prompt tokens. Randomness is a local SplitMix64, not
//! `rand`'s `StdRng`, so a seed gives the same prompts on every build and platform.

use bytes::Bytes;
use serde_json::json;

/// Short common words used to build prompts, separated by whitespace.
const WORDS: &str = "\
    time year people way day man thing woman life child world school state family student \
    group country problem hand part place case week company system program question work \
    number night point home water room mother area money story fact month lot right study book \
    eye job word business issue side kind head house service friend father power hour game \
    line end member law car city name team minute idea kid body back parent face level office \
    door health art war history party result change morning reason research girl guy moment \
    air teacher force good new first last long great little own other old big high different \
    small large next early young important few public bad same able make know take see come \
    think look want give use find tell ask feel try leave call keep let begin seem help talk \
    turn start show hear play run move like live believe hold bring happen write provide sit \
    stand lose pay meet include continue set learn lead understand watch follow stop create \
    speak read allow add spend grow open walk win offer remember love consider appear buy wait \
    serve die send expect build stay fall cut reach kill remain river stone light green blue \
    red small quiet music paper table window garden tree bird road train market field summer \
    winter ocean mountain cloud rain sun moon star island bridge village forest letter picture \
    voice street doctor animal color dream energy nature season simple strong clear early free \
    full warm cold dark bright happy ready real sure";

/// SplitMix64: tiny, fast and stable across builds (unlike `StdRng`).
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Workload shape; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    /// Model name sent in every request.
    pub model: String,
    /// Number of shared system prompts (`G`); 0 sends no system message.
    pub prefix_groups: usize,
    /// Words per shared system prompt (`W`).
    pub prefix_words: usize,
    /// Words unique to each request in the user message (`U`).
    pub unique_words: usize,
    /// `max_tokens` of every request.
    pub max_tokens: u32,
    /// Stream the answer (with `stream_options.include_usage`).
    pub stream: bool,
    /// Seed of all prompt text.
    pub seed: u64,
}

/// Deterministic generator of request bodies.
#[derive(Debug, Clone)]
pub struct Workload {
    spec: WorkloadSpec,
    vocabulary: Vec<&'static str>,
    prefixes: Vec<String>,
}

fn words(vocabulary: &[&str], rng: &mut SplitMix64, count: usize) -> String {
    let mut text = String::with_capacity(count * 7);
    for i in 0..count {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(vocabulary[rng.below(vocabulary.len())]);
    }
    text
}

impl Workload {
    /// Builds the shared prefixes of `spec`.
    pub fn new(spec: WorkloadSpec) -> Self {
        let vocabulary: Vec<&'static str> = WORDS.split_whitespace().collect();
        let prefixes = (0..spec.prefix_groups)
            .map(|group| {
                let mut rng = SplitMix64(spec.seed ^ 0x5052_4546_4958_0000 ^ group as u64);
                format!(
                    "You are assistant number {group}. {}.",
                    words(&vocabulary, &mut rng, spec.prefix_words)
                )
            })
            .collect();
        Self {
            spec,
            vocabulary,
            prefixes,
        }
    }

    /// The prefix group of request `index` (round-robin over the groups).
    pub fn group_of(&self, index: u64) -> Option<usize> {
        (self.spec.prefix_groups > 0).then(|| (index % self.spec.prefix_groups as u64) as usize)
    }

    /// The JSON body of request `index`.
    pub fn body(&self, index: u64) -> Bytes {
        let mut rng =
            SplitMix64(self.spec.seed.rotate_left(17) ^ index.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let user = format!(
            "Request {index}: {}.",
            words(&self.vocabulary, &mut rng, self.spec.unique_words)
        );
        let mut messages = Vec::with_capacity(2);
        if let Some(group) = self.group_of(index) {
            messages.push(json!({"role": "system", "content": self.prefixes[group]}));
        }
        messages.push(json!({"role": "user", "content": user}));
        let mut body = json!({
            "model": self.spec.model,
            "messages": messages,
            "max_tokens": self.spec.max_tokens,
            "stream": self.spec.stream,
        });
        if self.spec.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        Bytes::from(serde_json::to_vec(&body).expect("a JSON value always serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Workload, WorkloadSpec};

    fn spec(seed: u64) -> WorkloadSpec {
        WorkloadSpec {
            model: "m".into(),
            prefix_groups: 4,
            prefix_words: 400,
            unique_words: 100,
            max_tokens: 64,
            stream: true,
            seed,
        }
    }

    fn messages(body: &[u8]) -> (String, String) {
        let v: serde_json::Value = serde_json::from_slice(body).expect("valid json");
        let m = &v["messages"];
        (
            m[0]["content"].as_str().unwrap_or_default().into(),
            m[1]["content"].as_str().unwrap_or_default().into(),
        )
    }

    #[test]
    fn same_seed_same_bodies_and_different_seed_differs() {
        let a = Workload::new(spec(7));
        let b = Workload::new(spec(7));
        let c = Workload::new(spec(8));
        for i in 0..20 {
            assert_eq!(a.body(i), b.body(i));
            assert_ne!(a.body(i), c.body(i));
        }
    }

    #[test]
    fn groups_share_system_prompt_and_users_are_unique() {
        let w = Workload::new(spec(1));
        let (sys0, user0) = messages(&w.body(0));
        let (sys4, user4) = messages(&w.body(4));
        let (sys1, _) = messages(&w.body(1));
        assert_eq!(sys0, sys4);
        assert_ne!(sys0, sys1);
        assert_ne!(user0, user4);
        assert_eq!(sys0.split(' ').count(), 5 + 400);
        assert_eq!(user0.split(' ').count(), 2 + 100);
    }

    #[test]
    fn body_has_stream_options_and_max_tokens() {
        let w = Workload::new(spec(1));
        let v: serde_json::Value = serde_json::from_slice(&w.body(3)).expect("valid json");
        assert_eq!(v["max_tokens"], 64);
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        let mut no_prefix = spec(1);
        no_prefix.prefix_groups = 0;
        no_prefix.stream = false;
        let v: serde_json::Value =
            serde_json::from_slice(&Workload::new(no_prefix).body(3)).expect("valid json");
        assert_eq!(v["messages"].as_array().map(Vec::len), Some(1));
        assert!(v.get("stream_options").is_none());
    }
}
