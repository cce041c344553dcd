//! What the store's tests share: a tenant to write under.

use switchboard_model::TenantId;
use switchboard_store::{Store, Tenant};

/// Creates tenant `n` (slug `t<n>`) and returns its id.
pub async fn tenant(store: &Store, n: u128) -> TenantId {
    let t = TenantId::from_u128(n);
    store
        .create_tenant(&Tenant {
            id: t,
            slug: format!("t{n}"),
            name: "t".into(),
            created_at: 0,
        })
        .await
        .expect("tenant");
    t
}
