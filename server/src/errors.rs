//! Errors as the log writes them. What a peer or a user is told names only what failed; the
//! log gets the whole chain of causes (`cannot create …: permission denied`), from
//! [`std::error::Error::source`].

use std::fmt;

/// Displays an error followed by each of its causes: `a: b: c`. For the log:
/// `tracing::error!(error = %Chain(&e), "…")`. A cause whose text the error before it already
/// ends with is not repeated (some libraries write their source into their own message).
#[derive(Debug)]
pub struct Chain<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = c.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageError;

    #[test]
    fn shows_every_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let e = StorageError::database("cannot create the database", io);
        assert_eq!(e.to_string(), "cannot create the database");
        assert_eq!(
            Chain(&e).to_string(),
            "cannot create the database: permission denied"
        );
        // A message that already holds its cause's text does not get it twice.
        #[derive(Debug, thiserror::Error)]
        #[error("I/O error: {0}")]
        struct Repeats(#[source] std::io::Error);
        let repeats = Repeats(std::io::Error::other("broken pipe"));
        assert_eq!(Chain(&repeats).to_string(), "I/O error: broken pipe");
        let outer = crate::purge::PurgeError::Storage(e);
        assert!(
            Chain(&outer)
                .to_string()
                .ends_with("cannot create the database: permission denied"),
            "{}",
            Chain(&outer)
        );
    }
}
