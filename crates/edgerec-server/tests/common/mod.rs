//! Shared by the server's integration tests.

use std::net::SocketAddr;

use edgerec_server::ServerConfig;

/// A server on 127.0.0.1:0 in a background runtime, for the test's lifetime.
pub fn start(config: ServerConfig) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            edgerec_server::serve(listener, config, std::future::pending())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}
