//! End-to-end tests of the whole platform (see tests/).
