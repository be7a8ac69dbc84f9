//! ccri-mock (built in a later issue).
