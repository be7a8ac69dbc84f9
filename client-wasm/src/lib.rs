//! SMART App Launch client (built in a later issue).
