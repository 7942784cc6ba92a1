//! Submitting during a failover: a registration whose answer was lost "may or may not
//! have taken effect"; a careful client looks before it submits again.

use crate::masters::{ClientError, MasterClient};
use hearth_core::{AppDescription, AppId, DriverDescription, DriverId};

/// Registers `app` (client mode with `driver_url`, cluster mode with `driver`); when the
/// answer is uncertain, looks the app up by its name (which must be unique) and registers
/// it again only if no leader lists it. A blind retry could register it twice.
pub async fn submit_or_find(
    client: &MasterClient,
    app: &AppDescription,
    driver: Option<&DriverDescription>,
    driver_url: Option<&str>,
) -> Result<(AppId, Option<DriverId>), ClientError> {
    loop {
        match client.register_app(app, driver, driver_url).await {
            Err(ClientError::Unknown { what, status }) => {
                tracing::debug!(app = %app.name, %what, status = %status.message(), "uncertain registration: looking the app up by name");
                if let Some(found) = find_app(client, &app.name).await? {
                    return Ok(found);
                }
            }
            other => return other,
        }
    }
}

/// The app named `name` (active or completed) as a leader lists it, with its driver
/// (never a standby's replica, which may lag behind a registration already committed).
pub async fn find_app(
    client: &MasterClient,
    name: &str,
) -> Result<Option<(AppId, Option<DriverId>)>, ClientError> {
    let s = client.leader_state().await?;
    Ok(s.active_apps
        .iter()
        .chain(&s.completed_apps)
        .find(|x| x.desc.name == name)
        .map(|app| (app.id.clone(), app.driver.clone())))
}
