fn is_sync<T: Sync>() {}
fn is_send<T: Send>() {}
fn main() {
    is_sync::<redb::WriteTransaction>();
    is_send::<redb::Table<'static, u64, &'static [u8]>>();
}
