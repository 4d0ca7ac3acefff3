//! [`Dispatcher`]: several legacy apps mounted by path prefix, like
//! Werkzeug's `DispatcherMiddleware`.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use crate::app::App;
use crate::body::AppBody;
use crate::environ::{below_prefix, Environ};
use crate::error::BoxError;
use crate::latin1;
use crate::response::StartResponse;

/// Mounts legacy apps by path prefix, with a default app for the rest: an
/// [`App`] itself, so dispatchers nest.
///
/// The longest mounted prefix that matches `PATH_INFO` on a segment boundary
/// wins: `/api` takes `/api`, `/api/` and `/api/users`, not `/apix`. The app
/// it names sees the prefix moved from `PATH_INFO` to the end of
/// `SCRIPT_NAME`, as Werkzeug's `DispatcherMiddleware` does (`/api/users`:
/// `SCRIPT_NAME` `/api`, `PATH_INFO` `/users`; `/api`: `PATH_INFO` `""`).
/// Everything else goes to the default app unchanged.
///
/// ```
/// use tower_wsgi::middleware::Dispatcher;
/// use tower_wsgi::{app_fn, WsgiService};
///
/// let show = |name: &'static str| {
///     app_fn(move |environ, start_response| {
///         let text = format!("{name} {} {}", environ.script_name(), environ.path_info());
///         start_response.start("200 OK", [("Content-Type", "text/plain")])?;
///         Ok(text.into())
///     })
/// };
/// // DispatcherMiddleware(frontend, {"/api": api, "/admin": admin})
/// let app = Dispatcher::new(show("frontend"))
///     .mount("/api", show("api"))
///     .mount("/admin", show("admin"));
/// let service = WsgiService::new(app);
/// # drop(service);
/// ```
#[derive(Clone)]
pub struct Dispatcher {
    default: Arc<dyn App>,
    /// Longest prefix first.
    mounts: Vec<(String, Arc<dyn App>)>,
}

impl Dispatcher {
    /// A dispatcher sending every request to `default` until apps are mounted.
    pub fn new(default: impl App) -> Self {
        Self {
            default: Arc::new(default),
            mounts: Vec::new(),
        }
    }

    /// Mounts `app` under `prefix`, replacing an app mounted there before.
    ///
    /// The prefix is a path as written in a URL: it starts with `/`, a
    /// trailing `/` is ignored, and percent-escapes are decoded, so
    /// `"/caf%C3%A9"` and `"/café"` name the same mount.
    ///
    /// # Panics
    ///
    /// If `prefix` does not start with `/`, or is the root (`""` or `"/"`:
    /// that is the default app's place).
    #[must_use]
    pub fn mount(mut self, prefix: &str, app: impl App) -> Self {
        assert!(
            prefix.starts_with('/'),
            "a mount prefix starts with '/': {prefix:?}"
        );
        let prefix = latin1::percent_decode(prefix.trim_end_matches('/'));
        assert!(
            !prefix.is_empty(),
            "the root is the default app's place, not a mount"
        );
        self.mounts.retain(|(mounted, _)| *mounted != prefix);
        self.mounts.push((prefix, Arc::new(app)));
        self.mounts
            .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self
    }

    fn route<'p>(&self, path_info: &'p str) -> Option<(&Arc<dyn App>, &'p str, &'p str)> {
        self.mounts.iter().find_map(|(prefix, app)| {
            let rest = below_prefix(path_info, prefix)?;
            Some((app, &path_info[..prefix.len()], rest))
        })
    }
}

impl App for Dispatcher {
    fn call(
        &self,
        mut environ: Environ,
        start_response: StartResponse,
    ) -> Result<AppBody, BoxError> {
        let Some((app, script, rest)) = self.route(environ.path_info()) else {
            return self.default.call(environ, start_response);
        };
        let script_name = format!("{}{script}", environ.script_name());
        let path_info = rest.to_owned();
        let app = app.clone();
        environ.insert("SCRIPT_NAME", script_name);
        environ.insert("PATH_INFO", path_info);
        app.call(environ, start_response)
    }

    fn allows_inline(&self) -> bool {
        self.apps().all(|app| app.allows_inline())
    }

    fn run_thread(&self, thread: &mut (dyn FnMut() + Send)) {
        // Any of the apps may run on this thread: each wraps it in turn.
        let apps: Vec<&Arc<dyn App>> = self.apps().collect();
        nest_threads(&apps, thread);
    }

    fn parallelism(&self) -> Option<NonZeroUsize> {
        // As many as the least limited app can use: any app may get the thread.
        self.apps()
            .map(|app| app.parallelism())
            .try_fold(NonZeroUsize::MIN, |most, limit| {
                limit.map(|limit| most.max(limit))
            })
    }
}

impl Dispatcher {
    fn apps(&self) -> impl Iterator<Item = &Arc<dyn App>> {
        std::iter::once(&self.default).chain(self.mounts.iter().map(|(_, app)| app))
    }
}

fn nest_threads(apps: &[&Arc<dyn App>], thread: &mut (dyn FnMut() + Send)) {
    match apps.split_first() {
        None => thread(),
        Some((first, rest)) => first.run_thread(&mut || nest_threads(rest, thread)),
    }
}

impl fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field(
                "mounts",
                &self.mounts.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing(_: Environ, _: StartResponse) -> Result<AppBody, BoxError> {
        Ok(AppBody::empty())
    }

    #[test]
    fn longest_prefix_on_a_segment_boundary() {
        let dispatcher = Dispatcher::new(nothing)
            .mount("/api", nothing)
            .mount("/api/v2/", nothing)
            .mount("/caf%C3%A9", nothing);
        let split = |path: &str| {
            dispatcher
                .route(path)
                .map(|(_, script, rest)| (script.to_owned(), rest.to_owned()))
        };
        let owned = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(split("/api"), owned("/api", ""));
        assert_eq!(split("/api/"), owned("/api", "/"));
        assert_eq!(split("/api/x"), owned("/api", "/x"));
        assert_eq!(split("/api/v2"), owned("/api/v2", ""));
        assert_eq!(split("/api/v2x"), owned("/api", "/v2x"));
        assert_eq!(split("/apix"), None);
        assert_eq!(split("/"), None);
        assert_eq!(split("/caf\u{c3}\u{a9}/x"), owned("/caf\u{c3}\u{a9}", "/x"));
        assert_eq!(
            Dispatcher::new(nothing).mount("/café", nothing).mounts[0].0,
            "/caf\u{c3}\u{a9}"
        );
    }
}
