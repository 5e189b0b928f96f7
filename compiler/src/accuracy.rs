//! Accuracy by stage: the float network as loaded, after each pass that changed the function
//! (max pool → sum pool, activation replacement), and the plan's integers, so a report can say
//! which step cost what, and what to do about it.

use crate::ir::Graph;
use crate::{ActivationChoice, Compiled};
use serde::Serialize;

/// A drop (percentage points) from one stage to the next above which the report says what to
/// do (retrain, fit, more weight bits).
pub const NOTABLE_DROP_POINTS: f64 = 3.0;

/// Where the training script that shows how to train with x² and sum pooling lives.
pub const TRAINING_EXAMPLE: &str = "training/train_cryptonets.py";

/// The accuracy of one stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageAccuracy {
    /// The stage: `float`, the pass after which the float graph was taken (`lower_pooling`,
    /// `replace_activations`), or `plan`.
    pub stage: String,
    /// What that stage is, in words.
    pub description: String,
    /// Percentage of images classified right.
    pub percent: f64,
}

impl Compiled {
    /// The float graphs a report compares: as loaded, then after each pass that changed the
    /// function; `(stage, description, graph)`. The plan's integers come after them.
    pub fn float_stages(&self) -> Vec<(&'static str, String, &Graph)> {
        let mut stages = vec![("float", "float network as loaded".to_owned(), &self.source)];
        stages.extend(
            self.stages
                .iter()
                .map(|(pass, g)| (*pass, describe(pass, self.activation), g)),
        );
        stages
    }
}

fn describe(pass: &str, activation: ActivationChoice) -> String {
    match (pass, activation) {
        ("lower_pooling", _) => "float, after max pooling → sum pooling".into(),
        ("replace_activations", ActivationChoice::Square) => "float, after activations → x²".into(),
        ("replace_activations", ActivationChoice::Fit) => {
            "float, after activations → fitted a·x² + b·x + c".into()
        }
        (other, _) => format!("float, after {other}"),
    }
}

/// The plan stage's description.
pub const PLAN_STAGE: &str = "plan: quantised, exact integers as encrypted inference";

/// What to do about each stage that lost more than [`NOTABLE_DROP_POINTS`]; `stages` in order,
/// as [`Compiled::float_stages`] and then `plan` give them.
pub fn advice(stages: &[StageAccuracy], activation: ActivationChoice) -> Vec<String> {
    stages
        .windows(2)
        .filter_map(|pair| {
            let drop = pair[0].percent - pair[1].percent;
            (drop > NOTABLE_DROP_POINTS).then(|| advise(&pair[1].stage, drop, activation))
        })
        .collect()
}

fn advise(stage: &str, drop: f64, activation: ActivationChoice) -> String {
    match (stage, activation) {
        ("lower_pooling", _) => format!(
            "replacing max pooling by sum pooling costs {drop:.1} points: the network must be retrained with sum (or average) pooling to keep its accuracy ({TRAINING_EXAMPLE} shows how)"
        ),
        ("replace_activations", ActivationChoice::Square) => format!(
            "replacing the activations by x² costs {drop:.1} points: try --activation fit with --calibrate IMAGES (a polynomial fitted to the values each layer sees, same cost); if that loses too, retraining with x² activations is the only way to keep the accuracy ({TRAINING_EXAMPLE} shows how)"
        ),
        ("replace_activations", ActivationChoice::Fit) => format!(
            "even fitted polynomials cost {drop:.1} points: retraining the network with x² activations is the only way to keep its accuracy ({TRAINING_EXAMPLE} shows how)"
        ),
        ("plan", _) => format!(
            "quantisation costs {drop:.1} points: see the quantisation warnings above, and raise --weight-bits (or --input-bits)"
        ),
        (other, _) => format!("{other} costs {drop:.1} points"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(stage: &str, percent: f64) -> StageAccuracy {
        StageAccuracy {
            stage: stage.into(),
            description: String::new(),
            percent,
        }
    }

    #[test]
    fn advice_names_the_step_that_cost_and_the_way_out() {
        let stages = [
            stage("float", 93.9),
            stage("replace_activations", 62.6),
            stage("plan", 62.0),
        ];
        let square = advice(&stages, ActivationChoice::Square);
        assert_eq!(square.len(), 1);
        assert!(square[0].contains("31.3 points") && square[0].contains("--activation fit"));
        let fit = advice(&stages, ActivationChoice::Fit);
        assert!(fit[0].contains("only way") && fit[0].contains(TRAINING_EXAMPLE));
        let fine = [stage("float", 99.0), stage("plan", 98.5)];
        assert!(advice(&fine, ActivationChoice::Square).is_empty());
    }
}
