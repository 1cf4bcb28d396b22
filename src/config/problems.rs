//! The problem list (every problem of the file, the flags and the environment, reported at
//! once) and the `check-config` description the components write their lines into.

use std::fmt;

/// Every problem found in the file, the flags and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<String>);

impl Problems {
    pub fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `value` when nothing went wrong, else the whole list.
    pub fn into_result<T>(self, value: Option<T>) -> Result<T, Problems> {
        match value {
            Some(v) if self.is_empty() => Ok(v),
            _ => Err(self),
        }
    }
}

impl Extend<String> for Problems {
    fn extend<I: IntoIterator<Item = String>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// The effective settings as `key: value` lines, for `check-config`. Each component writes
/// its own lines and redacts its own secrets.
#[derive(Debug, Default)]
pub struct Description(String);

impl Description {
    pub fn line(&mut self, key: &str, value: impl fmt::Display) {
        use std::fmt::Write as _;
        let _ = writeln!(self.0, "{key}: {value}");
    }

    pub fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_counts_its_problems() {
        let mut p = Problems::default();
        p.push("a");
        assert_eq!(p.to_string(), "invalid configuration (1 problem):\n  - a\n");
        p.push("b");
        assert_eq!(
            p.to_string(),
            "invalid configuration (2 problems):\n  - a\n  - b\n"
        );
        assert_eq!(
            p.into_result(Some(1)),
            Err(Problems(vec!["a".into(), "b".into()]))
        );
        assert_eq!(Problems::default().into_result(Some(1)), Ok(1));
    }
}
