//! `nvext.extra_fields`: the response-side `nvext` a client asks for (`worker_id`, `timing`).

use stator_protocols::nvext::{NvExt, NvExtResponse, TimingInfo, WorkerIdInfo};

use crate::pipeline::FinishInfo;

/// Which extra response fields a request asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExtraFields {
    worker_id: bool,
    timing: bool,
}

impl ExtraFields {
    /// The fields named in `nvext.extra_fields` (unknown names are ignored, as Dynamo does).
    pub(crate) fn of(nvext: Option<&NvExt>) -> Self {
        nvext.map_or_else(Self::default, |nvext| Self {
            worker_id: nvext.wants_extra_field("worker_id"),
            timing: nvext.wants_extra_field("timing"),
        })
    }

    /// The response `nvext` for a finished choice; `None` when nothing was asked for.
    ///
    /// In aggregated serving one worker does prefill and decode, so both ids name it.
    pub(crate) fn response(self, finish: &FinishInfo) -> Option<NvExtResponse> {
        if !(self.worker_id || self.timing) {
            return None;
        }
        let report = finish.report.as_ref()?;
        let worker_id = self.worker_id.then_some(WorkerIdInfo {
            prefill_worker_id: Some(report.instance_id.0),
            decode_worker_id: Some(report.instance_id.0),
            prefill_dp_rank: report.dp_rank,
            decode_dp_rank: report.dp_rank,
        });
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let timing = self.timing.then(|| TimingInfo {
            request_received_ms: Some(report.received_unix_ms),
            prefill_wait_time_ms: Some(ms(report.routing)),
            prefill_time_ms: report.prefill().map(ms),
            ttft_ms: report.first_token.map(ms),
            total_time_ms: Some(ms(report.total)),
            kv_hit_rate: finish
                .cached_tokens
                .filter(|_| finish.prompt_tokens > 0)
                .map(|cached| f64::from(cached) / f64::from(finish.prompt_tokens)),
        });
        Some(NvExtResponse {
            worker_id,
            timing,
            ..NvExtResponse::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stator_protocols::openai::FinishReason;
    use stator_runtime::InstanceId;

    use super::*;
    use crate::pipeline::ChoiceReport;

    fn finish() -> FinishInfo {
        FinishInfo {
            index: 0,
            reason: FinishReason::Stop,
            prompt_tokens: 8,
            completion_tokens: 3,
            cached_tokens: Some(2),
            report: Some(ChoiceReport {
                instance_id: InstanceId(42),
                dp_rank: Some(1),
                received_unix_ms: 1_700_000_000_000,
                routing: Duration::from_millis(2),
                first_token: Some(Duration::from_millis(10)),
                total: Duration::from_millis(30),
            }),
        }
    }

    fn asking(fields: &[&str]) -> ExtraFields {
        let nvext = NvExt {
            extra_fields: Some(fields.iter().map(|f| (*f).to_owned()).collect()),
            ..NvExt::default()
        };
        ExtraFields::of(Some(&nvext))
    }

    #[test]
    fn nothing_asked_nothing_returned() {
        assert_eq!(ExtraFields::of(None).response(&finish()), None);
        assert_eq!(asking(&["unknown"]).response(&finish()), None);
    }

    #[test]
    fn worker_id_and_timing_come_from_the_report() {
        let nvext = asking(&["worker_id", "timing"])
            .response(&finish())
            .expect("asked");
        let worker = nvext.worker_id.expect("worker_id");
        assert_eq!(worker.decode_worker_id, Some(42));
        assert_eq!(worker.prefill_worker_id, Some(42));
        assert_eq!(worker.decode_dp_rank, Some(1));
        let timing = nvext.timing.expect("timing");
        assert_eq!(timing.request_received_ms, Some(1_700_000_000_000));
        assert_eq!(timing.prefill_wait_time_ms, Some(2.0));
        assert_eq!(timing.prefill_time_ms, Some(8.0));
        assert_eq!(timing.ttft_ms, Some(10.0));
        assert_eq!(timing.total_time_ms, Some(30.0));
        assert_eq!(timing.kv_hit_rate, Some(0.25));
        let only_timing = asking(&["timing"]).response(&finish()).expect("asked");
        assert!(only_timing.worker_id.is_none() && only_timing.timing.is_some());
    }
}
