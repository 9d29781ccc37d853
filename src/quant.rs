//! Item embeddings quantised to int8 with per-row scales, and the flat scan over them.
