//! The broker's nodes: `--amqp-url` names one node or, for a RabbitMQ
//! cluster, several, comma-separated. A client connects to the first node
//! that answers, each try under a timeout; after losing a node it tries the
//! nodes after that one first and the lost one last, so a worker moves on to
//! a live node instead of waiting for the dead one to come back.

use std::time::Duration;

use lapin::{Connection, ConnectionProperties};

use crate::config::redact;

/// The nodes of one broker (a single node, or the nodes of a cluster).
#[derive(Debug, Clone)]
pub struct Nodes {
    urls: Vec<String>,
}

/// An `--amqp-url` that names no node, or a node whose URL does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid AMQP URL {url:?}: {reason}")]
pub struct BadUrl {
    /// The URL at fault, its password hidden.
    pub url: String,
    pub reason: String,
}

/// Every node was tried and none answered; one error per node, in the order tried.
#[derive(Debug)]
pub struct Unreachable {
    pub tries: Vec<(String, lapin::Error)>,
}

impl Nodes {
    /// The nodes of a comma-separated list; blanks around and empty entries are ignored.
    pub fn parse(list: &str) -> Result<Self, BadUrl> {
        let urls: Vec<String> = crate::config::url_list(list)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err(BadUrl {
                url: list.to_owned(),
                reason: "no node given".into(),
            });
        }
        for url in &urls {
            url.parse::<lapin::uri::AMQPUri>()
                .map_err(|reason| BadUrl {
                    url: redact(url),
                    reason,
                })?;
        }
        Ok(Self { urls })
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// Node `index`'s URL with its password hidden, for messages.
    pub fn shown(&self, index: usize) -> String {
        redact(&self.urls[index])
    }

    /// Every node, passwords hidden, comma-separated.
    pub fn shown_all(&self) -> String {
        (0..self.len())
            .map(|i| self.shown(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The order in which to try the nodes: from the first at start-up
    /// (`lost` is `None`), or, after losing node `lost`, the ones after it
    /// (wrapping round) and `lost` itself last.
    pub fn order(&self, lost: Option<usize>) -> impl Iterator<Item = usize> + use<> {
        let n = self.len();
        let first = lost.map_or(0, |i| (i + 1) % n);
        (0..n).map(move |k| (first + k) % n)
    }

    /// Connects to the first node that answers, in [`Nodes::order`], each try
    /// under `wait`; returns the connection and the node's index.
    pub async fn connect(
        &self,
        lost: Option<usize>,
        name: &str,
        wait: Duration,
    ) -> Result<(Connection, usize), Unreachable> {
        let mut tries = Vec::new();
        for index in self.order(lost) {
            match self.connect_to(index, name, wait).await {
                Ok(conn) => return Ok((conn, index)),
                Err(error) => tries.push((self.shown(index), error)),
            }
        }
        Err(Unreachable { tries })
    }

    /// Connects to node `index` under `wait` (a node that never answers is a
    /// timeout, an I/O error), naming the connection `name` for operators.
    pub async fn connect_to(
        &self,
        index: usize,
        name: &str,
        wait: Duration,
    ) -> Result<Connection, lapin::Error> {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        match tokio::time::timeout(wait, Connection::connect(&self.urls[index], props)).await {
            Ok(result) => result,
            Err(_) => Err(lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("RabbitMQ did not answer within {wait:?}"),
            ))),
        }
    }
}

impl Unreachable {
    /// The failures in words (see [`crate::diagnose::amqp`]): one node's as
    /// it is, several as `node: reason; node: reason`.
    pub fn reason(&self) -> String {
        match self.tries.as_slice() {
            [(_, error)] => crate::diagnose::amqp(error),
            tries => tries
                .iter()
                .map(|(node, error)| format!("{node}: {}", crate::diagnose::amqp(error)))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// Whether waiting may help: some node is down or busy rather than refusing.
    pub fn is_passing(&self, passing: impl Fn(&lapin::Error) -> bool) -> bool {
        self.tries.iter().any(|(_, error)| passing(error))
    }

    /// The last node's error (what a caller that needs one error gets).
    pub fn into_last(self) -> lapin::Error {
        self.tries
            .into_iter()
            .next_back()
            .map(|(_, error)| error)
            .expect("at least one node was tried")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "amqp://u:pw@a:5681/%2f";
    const B: &str = "amqp://u:pw@b:5682/%2f";
    const C: &str = "amqp://u:pw@c:5683/%2f";

    #[test]
    fn a_list_is_split_on_commas_and_each_url_checked() {
        let nodes = Nodes::parse(&format!(" {A}, {B},,{C} ,")).unwrap();
        assert_eq!(nodes.urls, vec![A, B, C]);
        assert_eq!(
            nodes.shown_all(),
            "amqp://u:***@a:5681/%2f,amqp://u:***@b:5682/%2f,amqp://u:***@c:5683/%2f"
        );
        assert_eq!(Nodes::parse(A).unwrap().len(), 1);
        assert!(Nodes::parse(" , ").is_err());
        let bad = Nodes::parse(&format!("{A},amqp://u:pw@b:notaport/%2f")).unwrap_err();
        assert_eq!(bad.url, "amqp://u:***@b:notaport/%2f");
    }

    #[test]
    fn after_a_loss_the_next_nodes_come_first_and_the_lost_one_last() {
        let nodes = Nodes::parse(&[A, B, C].join(",")).unwrap();
        let order = |lost| nodes.order(lost).collect::<Vec<_>>();
        assert_eq!(order(None), vec![0, 1, 2]);
        assert_eq!(order(Some(0)), vec![1, 2, 0]);
        assert_eq!(order(Some(1)), vec![2, 0, 1]);
        assert_eq!(order(Some(2)), vec![0, 1, 2]);
        let single = Nodes::parse(A).unwrap();
        assert_eq!(single.order(Some(0)).collect::<Vec<_>>(), vec![0]);
    }

    #[tokio::test]
    async fn every_node_that_fails_is_named_in_the_reason() {
        // Port 1: nothing listens, the connection is refused at once.
        let nodes = Nodes::parse("amqp://u:pw@127.0.0.1:1/%2f,amqp://u:pw@127.0.0.1:1/x").unwrap();
        let failed = nodes
            .connect(Some(0), "test", Duration::from_secs(5))
            .await
            .unwrap_err();
        let reason = failed.reason();
        let first = reason.find("127.0.0.1:1/x").unwrap();
        let second = reason.find("127.0.0.1:1/%2f").unwrap();
        assert!(first < second, "tried in rotation order: {reason}");
        assert!(!reason.contains("pw"), "{reason}");
        assert!(failed.is_passing(|_| true));
    }
}
