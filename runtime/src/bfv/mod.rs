//! The BFV scheme: parameters, keys, encoding, encryption and the evaluator.
