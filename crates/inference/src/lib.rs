//! inference (being written)
