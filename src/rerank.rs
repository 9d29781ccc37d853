//! The top-k rerank on the device: filters, fatigue, maturity, diversity and reasons.
