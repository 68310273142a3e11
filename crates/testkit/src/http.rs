//! Local HTTP fixture servers: any axum router on a dynamic loopback port.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

/// An axum router served on `127.0.0.1:PORT` until dropped.
pub struct HttpFixture {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpFixture {
    /// Serves `router` on a fresh loopback port.
    pub async fn serve(router: axum::Router) -> HttpFixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture listener");
        let addr = listener.local_addr().expect("fixture address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        HttpFixture { addr, task }
    }

    /// Serves the router `make` builds from the fixture's own base URL
    /// (`http://127.0.0.1:PORT`), for sites that link to themselves.
    pub async fn serve_with(make: impl FnOnce(String) -> axum::Router) -> HttpFixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture listener");
        let addr = listener.local_addr().expect("fixture address");
        let router = make(format!("http://{addr}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        HttpFixture { addr, task }
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        self.task.abort();
    }
}
