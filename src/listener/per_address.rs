//! The cap on connections from one client address, so that one party cannot take every slot of
//! `max_connections`. An IPv6 client counts by its /64, the block one subscriber gets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `ip`, given back when the slot is dropped; `None`
    /// when the address already holds `max`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            of: self.clone(),
            key,
        })
    }

    fn release(&self, key: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// One connection's place under its address's cap.
#[derive(Debug)]
pub struct AddressSlot {
    of: Arc<PerAddress>,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.of.release(self.key);
    }
}

/// What connections are counted by: the IPv4 address, the /64 of an IPv6 one (an IPv4-mapped
/// IPv6 address counts as its IPv4 address).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_max_and_gets_its_places_back() {
        let cap = PerAddress::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = cap.admit(a).unwrap();
        let _second = cap.admit(a).unwrap();
        assert!(cap.admit(a).is_none());
        assert!(cap.admit(b).is_some(), "another address is not affected");
        drop(first);
        assert!(cap.admit(a).is_some());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let cap = PerAddress::new(1);
        let _held = cap.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(cap.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(cap.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = cap.admit("198.51.100.7".parse().unwrap()).unwrap();
        assert!(cap.admit("::ffff:198.51.100.7".parse().unwrap()).is_none());
    }

    #[test]
    fn released_addresses_leave_no_entry() {
        let cap = PerAddress::new(3);
        drop(cap.admit("192.0.2.1".parse().unwrap()));
        assert!(cap.open.lock().unwrap().is_empty());
    }
}
