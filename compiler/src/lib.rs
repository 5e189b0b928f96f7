//! Veil's compiler: model file → graph IR → passes → analyses → parameters → circuit plan.
