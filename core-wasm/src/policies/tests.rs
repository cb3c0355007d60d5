use fabric_protos::common::{
    ConfigGroup, ImplicitMetaPolicy, SignaturePolicy, SignaturePolicyEnvelope,
    implicit_meta_policy, policy::PolicyType, signature_policy,
};
use fabric_protos::msp::{
    CombinedPrincipal, MspIdentityAnonymity, MspPrincipal, MspRole, OrganizationUnit,
    msp_identity_anonymity, msp_principal::Classification, msp_role::MspRoleType,
};
use prost::Message;

use super::*;
use crate::config::testkit::*;
use crate::crypto::NativeCrypto;
use fabric_protos::common::{ConfigPolicy, Policy as PolicyProto};
use fabric_protos::msp::{FabricMspConfig, MspConfig};
use signature_policy::{NOutOf, Type};

const C: &NativeCrypto = &NativeCrypto;
const IMPLICIT_ANY_ADMINS_FAILED: &str = "implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Admins' sub-policies to be satisfied";
const NOT_SATISFIED: &str = "signature set did not satisfy policy";

/// A signature by `signer` over `data` (owned; see [`signed`]).
struct Sig {
    data: Vec<u8>,
    identity: Vec<u8>,
    signature: Vec<u8>,
}

fn sig(signer: &Signer, data: &[u8]) -> Sig {
    Sig {
        data: data.to_vec(),
        identity: signer.creator(),
        signature: sign(&signer.key, data),
    }
}

fn signed(sigs: &[Sig]) -> Vec<SignedData<'_>> {
    sigs.iter()
        .map(|s| SignedData {
            data: &s.data,
            identity: &s.identity,
            signature: &s.signature,
        })
        .collect()
}

fn now() -> u64 {
    envelope_time_nanos(&block_envelopes("blocks/mychannel-etcdraft-block-1.block")[0])
}

fn principal(classification: Classification, bytes: Vec<u8>) -> MspPrincipal {
    MspPrincipal {
        principal_classification: classification as i32,
        principal: bytes.into(),
    }
}

fn role(msp_id: &str, role: MspRoleType) -> MspPrincipal {
    principal(
        Classification::Role,
        MspRole {
            msp_identifier: msp_id.into(),
            role: role as i32,
        }
        .encode_to_vec(),
    )
}

fn member(msp_id: &str) -> MspPrincipal {
    role(msp_id, MspRoleType::Member)
}

fn signed_by(i: i32) -> SignaturePolicy {
    SignaturePolicy {
        r#type: Some(Type::SignedBy(i)),
    }
}

fn n_out_of(n: i32, rules: Vec<SignaturePolicy>) -> SignaturePolicy {
    SignaturePolicy {
        r#type: Some(Type::NOutOf(NOutOf { n, rules })),
    }
}

fn config_policy(r#type: PolicyType, value: Vec<u8>) -> ConfigPolicy {
    ConfigPolicy {
        version: 0,
        policy: Some(PolicyProto {
            r#type: r#type as i32,
            value: value.into(),
        }),
        mod_policy: "Admins".into(),
    }
}

fn signature(rule: SignaturePolicy, principals: Vec<MspPrincipal>) -> ConfigPolicy {
    config_policy(
        PolicyType::Signature,
        SignaturePolicyEnvelope {
            version: 0,
            rule: Some(rule),
            identities: principals,
        }
        .encode_to_vec(),
    )
}

/// `OR(principal)`, as configtxgen writes it.
fn signed_by_one(p: MspPrincipal) -> ConfigPolicy {
    signature(n_out_of(1, vec![signed_by(0)]), vec![p])
}

fn implicit(rule: i32, sub_policy: &str) -> ConfigPolicy {
    config_policy(
        PolicyType::ImplicitMeta,
        ImplicitMetaPolicy {
            sub_policy: sub_policy.into(),
            rule,
        }
        .encode_to_vec(),
    )
}

const ANY: i32 = implicit_meta_policy::Rule::Any as i32;
const ALL: i32 = implicit_meta_policy::Rule::All as i32;
const MAJORITY: i32 = implicit_meta_policy::Rule::Majority as i32;

fn group(policies: Vec<(&str, ConfigPolicy)>, groups: Vec<(&str, ConfigGroup)>) -> ConfigGroup {
    ConfigGroup {
        policies: policies
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        groups: groups
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        ..Default::default()
    }
}

/// A manager whose `/Channel/P` is `policy`.
fn single(policy: ConfigPolicy) -> PolicyManager {
    PolicyManager::from_channel_group(&group(vec![("P", policy)], vec![])).unwrap()
}

fn fixture_msps() -> MspManager {
    etcdraft_config().msps
}

fn eval(pm: &PolicyManager, msps: &MspManager, path: &str, sigs: &[Sig]) -> Result<(), String> {
    pm.evaluate(path, &signed(sigs), msps, now(), C)
        .map_err(|e| e.to_string())
}

#[test]
fn fixture_genesis_policies() {
    let config = etcdraft_config();
    let (pm, msps) = (&config.policies, &config.msps);
    let user = [sig(&user1(), b"data")];
    assert_eq!(eval(pm, msps, "/Channel/Writers", &user), Ok(()));
    assert_eq!(eval(pm, msps, "/Channel/Readers", &user), Ok(()));
    assert_eq!(
        eval(pm, msps, "/Channel/Application/Org1MSP/Writers", &user),
        Ok(())
    );
    assert_eq!(
        eval(pm, msps, "/Channel/Orderer/Admins", &user),
        Err(IMPLICIT_ANY_ADMINS_FAILED.into())
    );
    assert_eq!(
        eval(pm, msps, "/Channel/Orderer/OrdererOrg/Readers", &user),
        Err(NOT_SATISFIED.into())
    );
    let orderer_adm = [sig(&orderer_admin(), b"data")];
    assert_eq!(
        eval(pm, msps, "/Channel/Orderer/Admins", &orderer_adm),
        Ok(())
    );
    let org1_adm = [sig(&admin1(), b"data")];
    assert_eq!(
        eval(pm, msps, "/Channel/Orderer/Admins", &org1_adm),
        Err("implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Admins' sub-policies to be satisfied".into())
    );
    assert_eq!(
        eval(pm, msps, "/Channel/Application/Admins", &org1_adm),
        Ok(())
    );
    assert_eq!(
        eval(pm, msps, "/Channel/Application/Admins", &user),
        Err(IMPLICIT_ANY_ADMINS_FAILED.into())
    );
    // /Channel/Admins: MAJORITY of Application/Admins and Orderer/Admins, 2 of 2.
    assert_eq!(
        eval(pm, msps, "/Channel/Admins", &org1_adm),
        Err("implicit policy evaluation failed - 1 sub-policies were satisfied, but this policy requires 2 of the 'Admins' sub-policies to be satisfied".into())
    );
    let both = [sig(&admin1(), b"data"), sig(&orderer_admin(), b"data")];
    assert_eq!(eval(pm, msps, "/Channel/Admins", &both), Ok(()));
    // The orderer node writes and reads; in maintenance mode only the orderer org
    // does.
    let node = [sig(&orderer0(), b"data")];
    assert_eq!(eval(pm, msps, "/Channel/Orderer/Writers", &node), Ok(()));
    assert_eq!(
        eval(pm, msps, "/Channel/Orderer/Readers", &user),
        Err("implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Readers' sub-policies to be satisfied".into())
    );
    // No signature at all.
    assert_eq!(
        eval(pm, msps, "/Channel/Writers", &[]),
        Err("implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Writers' sub-policies to be satisfied".into())
    );
    // A relative path is relative to /Channel, as in Fabric's GetPolicy.
    assert_eq!(eval(pm, msps, "Orderer/Admins", &orderer_adm), Ok(()));
    assert!(
        pm.paths()
            .contains(&"/Channel/Orderer/OrdererOrg/Admins".to_string())
    );
    assert_eq!(pm.paths().len(), 19);
}

#[test]
fn unknown_policies() {
    let config = etcdraft_config();
    let (pm, msps) = (&config.policies, &config.msps);
    let orderer_adm = [sig(&orderer_admin(), b"data")];
    for (path, err) in [
        ("/Channel/Nope", "no such policy: 'Nope'"),
        ("/Channel/Orderer/Nope", "no such policy: 'Orderer/Nope'"),
        ("/Other/Admins", "no such policy: '/Other/Admins'"),
        ("/Channel", "no such policy: '/Channel'"),
        ("", "no such policy: ''"),
        ("Nope", "no such policy: 'Nope'"),
    ] {
        assert_eq!(
            eval(pm, msps, path, &orderer_adm),
            Err(err.into()),
            "{path}"
        );
        assert!(!pm.contains(path));
    }
    assert!(pm.contains("/Channel/Orderer/Admins"));
    // A sub-policy missing from a subgroup is Fabric's reject policy: counted in
    // the threshold, never satisfied.
    let pm = PolicyManager::from_channel_group(&group(
        vec![("Any", implicit(ANY, "Nope")), ("All", implicit(ALL, "P"))],
        vec![
            (
                "A",
                group(vec![("P", signed_by_one(member("Org1MSP")))], vec![]),
            ),
            ("B", group(vec![], vec![])),
        ],
    ))
    .unwrap();
    let msps = fixture_msps();
    let user = [sig(&user1(), b"x")];
    assert_eq!(
        eval(&pm, &msps, "/Channel/Any", &user),
        Err("implicit policy evaluation failed - 0 sub-policies were satisfied, but this policy requires 1 of the 'Nope' sub-policies to be satisfied".into())
    );
    assert_eq!(
        eval(&pm, &msps, "/Channel/All", &user),
        Err("implicit policy evaluation failed - 1 sub-policies were satisfied, but this policy requires 2 of the 'P' sub-policies to be satisfied".into())
    );
}

#[test]
fn resolve_mod_policies() {
    assert_eq!(
        PolicyManager::resolve("/Channel/Orderer", "Admins"),
        "/Channel/Orderer/Admins"
    );
    assert_eq!(
        PolicyManager::resolve("/Channel", "Writers"),
        "/Channel/Writers"
    );
    assert_eq!(
        PolicyManager::resolve("/Channel/Application/Org1MSP", "/Channel/Orderer/Admins"),
        "/Channel/Orderer/Admins"
    );
    assert_eq!(
        PolicyManager::resolve("/Channel/Orderer/", "Admins"),
        "/Channel/Orderer/Admins"
    );
    assert_eq!(PolicyManager::resolve("/Channel/Orderer", ""), "");
}

#[test]
fn n_out_of_nesting() {
    let msps = fixture_msps();
    let principals = vec![
        role("Org1MSP", MspRoleType::Client),
        role("Org1MSP", MspRoleType::Peer),
        role("OrdererMSP", MspRoleType::Orderer),
        role("OrdererMSP", MspRoleType::Admin),
    ];
    // 1 of { 2 of {Org1 client, Org1 peer, Orderer orderer}, Orderer admin }.
    let pm = single(signature(
        n_out_of(
            1,
            vec![
                n_out_of(2, vec![signed_by(0), signed_by(1), signed_by(2)]),
                signed_by(3),
            ],
        ),
        principals,
    ));
    let ok: &[&[Signer]] = &[
        &[user1(), peer0()],
        &[user1(), orderer0()],
        &[peer0(), orderer0()],
        &[orderer_admin()],
        &[admin1(), orderer_admin()],
        &[user1(), peer0(), orderer0(), orderer_admin()],
    ];
    for signers in ok {
        let sigs: Vec<Sig> = signers.iter().map(|s| sig(s, b"m")).collect();
        assert_eq!(eval(&pm, &msps, "/Channel/P", &sigs), Ok(()));
    }
    let not_ok: &[&[Signer]] = &[
        &[],
        &[user1()],
        &[peer0()],
        &[admin1(), orderer0()],
        &[user1(), admin1()],
    ];
    for signers in not_ok {
        let sigs: Vec<Sig> = signers.iter().map(|s| sig(s, b"m")).collect();
        assert_eq!(
            eval(&pm, &msps, "/Channel/P", &sigs),
            Err(NOT_SATISFIED.into())
        );
    }
    // Each signature satisfies one principal only: 2 of {Org1 member, Org1 member}.
    let pm = single(signature(
        n_out_of(2, vec![signed_by(0), signed_by(0)]),
        vec![member("Org1MSP")],
    ));
    assert_eq!(
        eval(&pm, &msps, "/Channel/P", &[sig(&user1(), b"m")]),
        Err(NOT_SATISFIED.into())
    );
    assert_eq!(
        eval(
            &pm,
            &msps,
            "/Channel/P",
            &[sig(&user1(), b"m"), sig(&admin1(), b"m")]
        ),
        Ok(())
    );
    // A failed branch gives its signatures back: 2 of { 2 of {Org1 member,
    // Orderer admin}, Org1 member }.
    let pm = single(signature(
        n_out_of(
            2,
            vec![n_out_of(2, vec![signed_by(0), signed_by(1)]), signed_by(0)],
        ),
        vec![member("Org1MSP"), role("OrdererMSP", MspRoleType::Admin)],
    ));
    assert_eq!(
        eval(
            &pm,
            &msps,
            "/Channel/P",
            &[sig(&user1(), b"m"), sig(&admin1(), b"m")]
        ),
        Err(NOT_SATISFIED.into())
    );
    assert_eq!(
        eval(
            &pm,
            &msps,
            "/Channel/P",
            &[
                sig(&user1(), b"m"),
                sig(&admin1(), b"m"),
                sig(&orderer_admin(), b"m")
            ]
        ),
        Ok(())
    );
    // Fabric's evaluation is greedy, in signature order: 2 of {Org1 member, Org1
    // admin} passes with [User1, Admin] but not with [Admin, User1] (the member
    // principal takes the admin's signature).
    let pm = single(signature(
        n_out_of(2, vec![signed_by(0), signed_by(1)]),
        vec![member("Org1MSP"), role("Org1MSP", MspRoleType::Admin)],
    ));
    assert_eq!(
        eval(
            &pm,
            &msps,
            "/Channel/P",
            &[sig(&user1(), b"m"), sig(&admin1(), b"m")]
        ),
        Ok(())
    );
    assert_eq!(
        eval(
            &pm,
            &msps,
            "/Channel/P",
            &[sig(&admin1(), b"m"), sig(&user1(), b"m")]
        ),
        Err(NOT_SATISFIED.into())
    );
    // N <= 0 is always satisfied; 3 of 2 never.
    let pm = single(signature(
        n_out_of(0, vec![signed_by(0)]),
        vec![member("Org1MSP")],
    ));
    assert_eq!(eval(&pm, &msps, "/Channel/P", &[]), Ok(()));
    let pm = single(signature(
        n_out_of(3, vec![signed_by(0), signed_by(0)]),
        vec![member("Org1MSP")],
    ));
    let all: Vec<Sig> = [user1(), admin1(), peer0()]
        .iter()
        .map(|s| sig(s, b"m"))
        .collect();
    assert_eq!(
        eval(&pm, &msps, "/Channel/P", &all),
        Err(NOT_SATISFIED.into())
    );
}

/// `/Channel/{Any,All,Majority}` over groups A (Org1 member), B (Orderer member)
/// and C (Org1 admin), each with policy P.
fn three_groups() -> PolicyManager {
    PolicyManager::from_channel_group(&group(
        vec![
            ("Any", implicit(ANY, "P")),
            ("All", implicit(ALL, "P")),
            ("Majority", implicit(MAJORITY, "P")),
        ],
        vec![
            (
                "A",
                group(vec![("P", signed_by_one(member("Org1MSP")))], vec![]),
            ),
            (
                "B",
                group(vec![("P", signed_by_one(member("OrdererMSP")))], vec![]),
            ),
            (
                "C",
                group(
                    vec![("P", signed_by_one(role("Org1MSP", MspRoleType::Admin)))],
                    vec![],
                ),
            ),
        ],
    ))
    .unwrap()
}

fn implicit_failed(satisfied: usize, required: usize) -> Result<(), String> {
    Err(format!(
        "implicit policy evaluation failed - {satisfied} sub-policies were satisfied, but this policy requires {required} of the 'P' sub-policies to be satisfied"
    ))
}

#[test]
fn implicit_meta_any_all_majority() {
    let pm = three_groups();
    let msps = fixture_msps();
    let e = |path: &str, signers: &[Signer]| {
        let sigs: Vec<Sig> = signers.iter().map(|s| sig(s, b"m")).collect();
        eval(&pm, &msps, path, &sigs)
    };
    // Nothing satisfied.
    assert_eq!(e("/Channel/Any", &[]), implicit_failed(0, 1));
    assert_eq!(e("/Channel/Majority", &[]), implicit_failed(0, 2));
    assert_eq!(e("/Channel/All", &[]), implicit_failed(0, 3));
    // A only.
    assert_eq!(e("/Channel/Any", &[user1()]), Ok(()));
    assert_eq!(e("/Channel/Majority", &[user1()]), implicit_failed(1, 2));
    assert_eq!(e("/Channel/All", &[user1()]), implicit_failed(1, 3));
    // A and B.
    assert_eq!(e("/Channel/Majority", &[user1(), orderer0()]), Ok(()));
    assert_eq!(
        e("/Channel/All", &[user1(), orderer0()]),
        implicit_failed(2, 3)
    );
    // A, B and C: the same signature may satisfy several sub-policies.
    assert_eq!(e("/Channel/All", &[admin1(), orderer0()]), Ok(()));
    assert_eq!(e("/Channel/Majority", &[admin1()]), Ok(()));
    // Nested ImplicitMeta policies (the fixture's /Channel/Writers is one) and
    // the sub-group paths.
    assert_eq!(e("/Channel/C/P", &[user1()]), Err(NOT_SATISFIED.into()));
    assert_eq!(e("/Channel/C/P", &[admin1()]), Ok(()));
    // MAJORITY of 4 is 3, of 1 is 1; ALL of 1 is 1.
    let four = PolicyManager::from_channel_group(&group(
        vec![("Majority", implicit(MAJORITY, "P"))],
        ["A", "B", "C", "D"]
            .into_iter()
            .map(|g| {
                (
                    g,
                    group(vec![("P", signed_by_one(member("Org1MSP")))], vec![]),
                )
            })
            .collect(),
    ))
    .unwrap();
    assert_eq!(
        eval(&four, &msps, "/Channel/Majority", &[]),
        implicit_failed(0, 3)
    );
    assert_eq!(
        eval(&four, &msps, "/Channel/Majority", &[sig(&user1(), b"m")]),
        Ok(())
    );
}

#[test]
fn implicit_meta_without_subgroups_is_satisfied() {
    // Fabric: with no sub-groups the threshold is 0, whatever the rule.
    let msps = fixture_msps();
    for rule in [ANY, ALL, MAJORITY] {
        let pm = single(implicit(rule, "Admins"));
        assert_eq!(eval(&pm, &msps, "/Channel/P", &[]), Ok(()));
    }
    // An unknown rule leaves Fabric's threshold at 0 too: satisfied while no
    // sub-policy is, then "1 of 0" once one is (Go's arithmetic, kept).
    let pm = PolicyManager::from_channel_group(&group(
        vec![("Odd", implicit(7, "P"))],
        vec![(
            "A",
            group(vec![("P", signed_by_one(member("Org1MSP")))], vec![]),
        )],
    ))
    .unwrap();
    assert_eq!(
        eval(&pm, &msps, "/Channel/Odd", &[sig(&orderer0(), b"m")]),
        Ok(())
    );
    assert_eq!(
        eval(&pm, &msps, "/Channel/Odd", &[sig(&user1(), b"m")]),
        Err("implicit policy evaluation failed - 1 sub-policies were satisfied, but this policy requires 0 of the 'P' sub-policies to be satisfied".into())
    );
}

/// Which of the fixture identities satisfy `p`.
fn who_satisfies(msps: &MspManager, p: MspPrincipal) -> Vec<&'static str> {
    let pm = single(signed_by_one(p));
    let mut out = Vec::new();
    for (name, signer) in [
        ("user1", user1()),
        ("admin1", admin1()),
        ("peer0", peer0()),
        ("orderer_admin", orderer_admin()),
        ("orderer0", orderer0()),
    ] {
        if eval(&pm, msps, "/Channel/P", &[sig(&signer, b"m")]).is_ok() {
            out.push(name);
        }
    }
    out
}

#[test]
fn role_principals_with_node_ous() {
    let msps = fixture_msps();
    use MspRoleType::*;
    let org1 = |r| who_satisfies(&msps, role("Org1MSP", r));
    assert_eq!(org1(Member), ["user1", "admin1", "peer0"]);
    assert_eq!(org1(Admin), ["admin1"]);
    assert_eq!(org1(Client), ["user1"]);
    assert_eq!(org1(Peer), ["peer0"]);
    assert!(org1(Orderer).is_empty());
    let ord = |r| who_satisfies(&msps, role("OrdererMSP", r));
    assert_eq!(ord(Member), ["orderer_admin", "orderer0"]);
    assert_eq!(ord(Admin), ["orderer_admin"]);
    assert_eq!(ord(Orderer), ["orderer0"]);
    assert!(ord(Client).is_empty());
    assert!(ord(Peer).is_empty());
    // Unknown MSP, unknown role number, undecodable principal.
    assert!(who_satisfies(&msps, member("Org9MSP")).is_empty());
    assert!(
        who_satisfies(
            &msps,
            principal(
                Classification::Role,
                MspRole {
                    msp_identifier: "Org1MSP".into(),
                    role: 9
                }
                .encode_to_vec()
            )
        )
        .is_empty()
    );
    assert!(who_satisfies(&msps, principal(Classification::Role, vec![0xff])).is_empty());
    assert!(who_satisfies(&msps, principal(Classification::Combined, vec![0xff])).is_empty());
    let odd = MspPrincipal {
        principal_classification: 42,
        principal: Default::default(),
    };
    assert!(who_satisfies(&msps, odd).is_empty());
}

/// The fixture's Org1 MSP config, edited.
fn org1_msp(edit: impl FnOnce(&mut FabricMspConfig)) -> MspConfig {
    let mut config = genesis_application_msp("Org1MSP");
    let mut fabric = FabricMspConfig::decode(config.config.as_ref()).unwrap();
    edit(&mut fabric);
    config.config = fabric.encode_to_vec().into();
    config
}

#[test]
fn role_principals_without_node_ous() {
    use MspRoleType::*;
    let msps = MspManager::new(
        &[org1_msp(|f| {
            f.fabric_node_ous = None;
            f.admins = vec![admin1().cert_pem.into()];
        })],
        C,
    )
    .unwrap();
    let org1 = |r| who_satisfies(&msps, role("Org1MSP", r));
    assert_eq!(org1(Member), ["user1", "admin1", "peer0"]);
    assert_eq!(org1(Admin), ["admin1"], "listed in admins");
    assert!(org1(Client).is_empty(), "NodeOUs not activated");
    assert!(org1(Peer).is_empty());
    assert!(org1(Orderer).is_empty());
    // NodeOUs present but disabled: the same.
    let msps = MspManager::new(
        &[org1_msp(|f| {
            f.fabric_node_ous.as_mut().unwrap().enable = false;
            f.admins = vec![user1().cert_pem.into()];
        })],
        C,
    )
    .unwrap();
    assert_eq!(who_satisfies(&msps, role("Org1MSP", Admin)), ["user1"]);
    assert!(who_satisfies(&msps, role("Org1MSP", Client)).is_empty());
    // Without NodeOUs an MSP must list its admins (Fabric's setupAdminsV142).
    let err = MspManager::new(&[org1_msp(|f| f.fabric_node_ous = None)], C)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "MSP Org1MSP: administrators must be declared when no admin ou classification is set"
    );
    // With NodeOUs, an identity listed in admins is an admin too, whatever its OU
    // (it must be a client or an admin).
    let msps =
        MspManager::new(&[org1_msp(|f| f.admins = vec![user1().cert_pem.into()])], C).unwrap();
    assert_eq!(
        who_satisfies(&msps, role("Org1MSP", Admin)),
        ["user1", "admin1"]
    );
    let err = MspManager::new(&[org1_msp(|f| f.admins = vec![peer0().cert_pem.into()])], C)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("MSP Org1MSP: admin 0 is invalid [The identity does not contain OU [CLIENT], MSP: [Org1MSP],The identity does not contain OU [ADMIN]"), "{err}");
}

fn org1_ca_certifiers() -> Vec<u8> {
    C.sha256(&crate::msp::pem_decode(&org1_ca_pem()).unwrap())
        .to_vec()
}

fn ou(msp_id: &str, ou: &str, certifiers: Vec<u8>) -> MspPrincipal {
    principal(
        Classification::OrganizationUnit,
        OrganizationUnit {
            msp_identifier: msp_id.into(),
            organizational_unit_identifier: ou.into(),
            certifiers_identifier: certifiers.into(),
        }
        .encode_to_vec(),
    )
}

#[test]
fn organization_unit_identity_anonymity_and_combined_principals() {
    let msps = fixture_msps();
    let cid = org1_ca_certifiers();
    assert_eq!(
        who_satisfies(&msps, ou("Org1MSP", "client", cid.clone())),
        ["user1"]
    );
    assert_eq!(
        who_satisfies(&msps, ou("Org1MSP", "admin", cid.clone())),
        ["admin1"]
    );
    assert_eq!(
        who_satisfies(&msps, ou("Org1MSP", "peer", cid.clone())),
        ["peer0"]
    );
    // The certifiers identifier must match exactly (empty is no wildcard here).
    assert!(who_satisfies(&msps, ou("Org1MSP", "client", vec![])).is_empty());
    assert!(who_satisfies(&msps, ou("Org1MSP", "client", vec![0; 32])).is_empty());
    assert!(who_satisfies(&msps, ou("OrdererMSP", "client", cid)).is_empty());
    // IDENTITY: exactly this certificate, under this MSP.
    let id = |msp_id: &str, s: &Signer| {
        principal(Classification::Identity, serialized(msp_id, &s.cert_pem))
    };
    assert_eq!(who_satisfies(&msps, id("Org1MSP", &user1())), ["user1"]);
    assert_eq!(
        who_satisfies(&msps, id("OrdererMSP", &orderer0())),
        ["orderer0"]
    );
    assert!(who_satisfies(&msps, id("OrdererMSP", &user1())).is_empty());
    assert!(who_satisfies(&msps, principal(Classification::Identity, b"junk".to_vec())).is_empty());
    // ANONYMITY: X.509 identities are nominal.
    let anon = |t: msp_identity_anonymity::MspIdentityAnonymityType| {
        principal(
            Classification::Anonymity,
            MspIdentityAnonymity {
                anonymity_type: t as i32,
            }
            .encode_to_vec(),
        )
    };
    use msp_identity_anonymity::MspIdentityAnonymityType::*;
    assert_eq!(who_satisfies(&msps, anon(Nominal)).len(), 5);
    assert!(who_satisfies(&msps, anon(Anonymous)).is_empty());
    // COMBINED: all of its (nested) principals.
    let combined = |ps: Vec<MspPrincipal>| {
        principal(
            Classification::Combined,
            CombinedPrincipal { principals: ps }.encode_to_vec(),
        )
    };
    let client_member = combined(vec![
        member("Org1MSP"),
        combined(vec![role("Org1MSP", MspRoleType::Client)]),
    ]);
    assert_eq!(who_satisfies(&msps, client_member), ["user1"]);
    assert!(who_satisfies(&msps, combined(vec![])).is_empty());
    assert!(
        who_satisfies(
            &msps,
            combined(vec![member("Org1MSP"), member("OrdererMSP")])
        )
        .is_empty()
    );
}

#[test]
fn revoked_and_expired_certificates() {
    let user = user1();
    let serial = crate::msp::ParsedIdentity::from_serialized(&user.creator())
        .unwrap()
        .cert
        .serial_number()
        .to_vec();
    let crl = crate::msp::tests::crl(&org1_ca_pem(), &org1_ca_key(), &[serial]);
    let msps = MspManager::new(&[org1_msp(|f| f.revocation_list.push(crl.into()))], C).unwrap();
    use MspRoleType::*;
    assert_eq!(who_satisfies(&msps, member("Org1MSP")), ["admin1", "peer0"]);
    assert!(who_satisfies(&msps, role("Org1MSP", Client)).is_empty());
    let cid = org1_ca_certifiers();
    assert!(who_satisfies(&msps, ou("Org1MSP", "client", cid)).is_empty());
    assert!(
        who_satisfies(
            &msps,
            principal(
                Classification::Identity,
                serialized("Org1MSP", &user.cert_pem)
            )
        )
        .is_empty()
    );
    // Expired: Fabric's MSP checks the chain at the certificate's NotBefore + 1s and
    // policy evaluation does not look at the clock, so an expired signer still
    // satisfies a policy (the filters check expiry).
    let config = etcdraft_config();
    let not_after = crate::msp::ParsedIdentity::from_serialized(&user.creator())
        .unwrap()
        .cert
        .not_after_unix_nanos;
    let sigs = [sig(&user, b"m")];
    let later = not_after + 365 * 24 * 3600 * 1_000_000_000;
    assert_eq!(
        config
            .policies
            .evaluate("/Channel/Writers", &signed(&sigs), &config.msps, later, C),
        Ok(())
    );
    // A certificate minted with a NotAfter at the end of its first day, used
    // after that: still valid for its MSP, so it satisfies Org1 member too.
    let short_lived = mint_cert(
        &user.cert_pem,
        &org1_ca_key(),
        |tbs| {
            // Validity = SEQUENCE { UTCTime notBefore, UTCTime notAfter }, each
            // "YYMMDDhhmmssZ".
            let nb = tbs.windows(2).position(|w| w == [0x17, 0x0d]).unwrap() + 2;
            let na = nb + 15;
            assert_eq!(&tbs[na - 2..na], &[0x17, 0x0d]);
            let day = tbs[nb..nb + 6].to_vec();
            tbs[na..na + 6].copy_from_slice(&day);
            tbs[na + 6..na + 12].copy_from_slice(b"235959");
        },
        false,
    );
    let signer = Signer {
        msp_id: "Org1MSP".into(),
        cert_pem: short_lived,
        key: user1().key,
    };
    let cert = crate::msp::ParsedIdentity::from_serialized(&signer.creator())
        .unwrap()
        .cert;
    assert!(cert.not_after_unix_nanos - cert.not_before_unix_nanos < 24 * 3600 * 1_000_000_000);
    let pm = single(signed_by_one(member("Org1MSP")));
    let sigs = [sig(&signer, b"m")];
    let after = cert.not_after_unix_nanos + 1;
    assert_eq!(
        pm.evaluate("/Channel/P", &signed(&sigs), &config.msps, after, C),
        Ok(())
    );
    assert!(
        config
            .msps
            .validate_identity(&signer.creator(), after, C)
            .is_err()
    );
}

#[test]
fn duplicated_identities_count_once() {
    let msps = fixture_msps();
    let two_members = single(signature(
        n_out_of(2, vec![signed_by(0), signed_by(0)]),
        vec![member("Org1MSP")],
    ));
    // The same identity twice (different data): counted once.
    let sigs = [sig(&user1(), b"one"), sig(&user1(), b"two")];
    assert_eq!(
        eval(&two_members, &msps, "/Channel/P", &sigs),
        Err(NOT_SATISFIED.into())
    );
    // A duplicate is dropped before its signature is checked.
    let c = &CountingCrypto::default();
    let fresh = msps.clone();
    let _ = two_members.evaluate("/Channel/P", &signed(&sigs), &fresh, now(), c);
    assert_eq!(c.verifies(), 2, "one signature, one chain");
    // The same certificate in a re-encoded SerializedIdentity (PEM without the
    // final newline) is still the same identity.
    let mut reencoded = sig(&user1(), b"three");
    let pem = user1().cert_pem;
    reencoded.identity = serialized("Org1MSP", pem.strip_suffix(b"\n").unwrap());
    let one_member = single(signed_by_one(member("Org1MSP")));
    assert_eq!(
        eval(
            &one_member,
            &msps,
            "/Channel/P",
            std::slice::from_ref(&reencoded)
        ),
        Ok(()),
        "the re-encoded identity deserializes"
    );
    let sigs = [sig(&user1(), b"one"), reencoded];
    assert_eq!(
        eval(&two_members, &msps, "/Channel/P", &sigs),
        Err(NOT_SATISFIED.into())
    );
    // Two identities: satisfied.
    let sigs = [sig(&user1(), b"one"), sig(&peer0(), b"two")];
    assert_eq!(eval(&two_members, &msps, "/Channel/P", &sigs), Ok(()));
}

#[test]
fn more_than_64_signers() {
    // 65 distinct identities with User1's key: its certificate re-signed by the
    // CA with the serial number's last byte changed.
    let user = user1();
    let serial = crate::msp::ParsedIdentity::from_serialized(&user.creator())
        .unwrap()
        .cert
        .serial_number()
        .to_vec();
    let sigs: Vec<Sig> = (0..65u8)
        .map(|i| {
            let mut other = serial.clone();
            *other.last_mut().unwrap() = i;
            let cert = mint_cert(
                &user.cert_pem,
                &org1_ca_key(),
                |tbs| replace_once(tbs, &serial, &other),
                false,
            );
            Sig {
                data: vec![i],
                identity: serialized("Org1MSP", &cert),
                signature: sign(&user.key, &[i]),
            }
        })
        .collect();
    let msps = fixture_msps();
    let n_members = |n: i32| n_out_of(n, (0..n).map(|_| signed_by(0)).collect());
    let policy = |rule: SignaturePolicy| single(signature(rule, vec![member("Org1MSP")]));
    for (count, n, expected) in [
        (64, 64, Ok(())),
        (64, 65, Err(NOT_SATISFIED.to_string())),
        (65, 65, Ok(())),
        (65, 66, Err(NOT_SATISFIED.to_string())),
    ] {
        assert_eq!(
            eval(&policy(n_members(n)), &msps, "/Channel/P", &sigs[..count]),
            expected,
            "{n} of {count} signers"
        );
    }
    // A failed branch gives its identities back, beyond 64 identities too.
    for count in [64, 65] {
        let n = count as i32;
        let either = n_out_of(1, vec![n_members(n + 1), n_members(n)]);
        assert_eq!(
            eval(&policy(either), &msps, "/Channel/P", &sigs[..count]),
            Ok(())
        );
        let both = n_out_of(2, vec![n_members(n), n_members(1)]);
        assert_eq!(
            eval(&policy(both), &msps, "/Channel/P", &sigs[..count]),
            Err(NOT_SATISFIED.into())
        );
    }
}

#[test]
fn bad_signatures_are_not_counted() {
    let msps = fixture_msps();
    let pm = single(signed_by_one(member("Org1MSP")));
    let bad = |mut s: Sig| {
        s.signature = sign(&admin1().key, &s.data);
        s
    };
    assert_eq!(
        eval(&pm, &msps, "/Channel/P", &[bad(sig(&user1(), b"m"))]),
        Err(NOT_SATISFIED.into())
    );
    // High-S, garbage and empty signatures.
    let mut high = sig(&user1(), b"m");
    high.signature = high_s_twin(&high.signature);
    let mut junk = sig(&user1(), b"m");
    junk.signature = b"junk".to_vec();
    let mut empty = sig(&user1(), b"m");
    empty.signature.clear();
    for s in [high, junk, empty] {
        assert_eq!(
            eval(&pm, &msps, "/Channel/P", &[s]),
            Err(NOT_SATISFIED.into())
        );
    }
    // A bad signature does not mark the identity as seen: a good one by the same
    // identity after it counts.
    let sigs = [bad(sig(&user1(), b"m")), sig(&user1(), b"m")];
    assert_eq!(eval(&pm, &msps, "/Channel/P", &sigs), Ok(()));
    // Identities that do not deserialize are skipped, not fatal.
    let mut unknown = sig(&user1(), b"m");
    unknown.identity = serialized("Org9MSP", &user1().cert_pem);
    let mut junk_id = sig(&user1(), b"m");
    junk_id.identity = b"\xff\xff".to_vec();
    let mut not_pem = sig(&user1(), b"m");
    not_pem.identity = serialized("Org1MSP", b"nope");
    let sigs = [unknown, junk_id, not_pem, sig(&peer0(), b"m")];
    assert_eq!(eval(&pm, &msps, "/Channel/P", &sigs), Ok(()));
    assert_eq!(
        eval(&pm, &msps, "/Channel/P", &sigs[..3]),
        Err(NOT_SATISFIED.into())
    );
}

#[test]
fn identities_are_validated_once_per_evaluation_and_cached() {
    // ALL of three groups whose policy is Org1 member: one signature check and
    // one chain check, however many principals look at the identity.
    let pm = PolicyManager::from_channel_group(&group(
        vec![("All", implicit(ALL, "P"))],
        ["A", "B", "C"]
            .into_iter()
            .map(|g| {
                (
                    g,
                    group(vec![("P", signed_by_one(member("Org1MSP")))], vec![]),
                )
            })
            .collect(),
    ))
    .unwrap();
    let msps = fixture_msps();
    let c = &CountingCrypto::default();
    let sigs = [sig(&user1(), b"m")];
    assert_eq!(
        pm.evaluate("/Channel/All", &signed(&sigs), &msps, now(), c),
        Ok(())
    );
    assert_eq!(c.verifies(), 2);
    // The MSP manager cached the identity: the signature only.
    assert_eq!(
        pm.evaluate("/Channel/All", &signed(&sigs), &msps, now(), c),
        Ok(())
    );
    assert_eq!(c.verifies(), 3);
    // An invalid identity is validated once per evaluation (and not cached).
    let revoked_serial = crate::msp::ParsedIdentity::from_serialized(&user1().creator())
        .unwrap()
        .cert
        .serial_number()
        .to_vec();
    let crl = crate::msp::tests::crl(&org1_ca_pem(), &org1_ca_key(), &[revoked_serial]);
    let msps = MspManager::new(&[org1_msp(|f| f.revocation_list.push(crl.into()))], C).unwrap();
    let c = &CountingCrypto::default();
    assert!(
        pm.evaluate("/Channel/All", &signed(&sigs), &msps, now(), c)
            .is_err()
    );
    assert_eq!(c.verifies(), 3, "signature, chain, CRL signature");
    assert_eq!(msps.cached_identities(), 0);
}

#[test]
fn compile_errors() {
    let build = |p: ConfigPolicy| {
        PolicyManager::from_channel_group(&group(
            vec![],
            vec![("Orderer", group(vec![("Bad", p)], vec![]))],
        ))
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        build(ConfigPolicy::default()),
        "policy Bad at path Channel/Orderer was nil"
    );
    assert_eq!(
        build(config_policy(PolicyType::Msp, vec![])),
        "policy Bad at path Channel/Orderer has unknown policy type: 2"
    );
    assert_eq!(
        build(config_policy(PolicyType::Unknown, vec![])),
        "policy Bad at path Channel/Orderer has unknown policy type: 0"
    );
    let err = build(config_policy(PolicyType::Signature, vec![0xff]));
    assert!(
        err.starts_with("policy Bad at path Channel/Orderer did not compile: Error unmarshalling to SignaturePolicy: "),
        "{err}"
    );
    let err = build(config_policy(PolicyType::ImplicitMeta, vec![0xff]));
    assert!(
        err.starts_with("implicit policy Bad at path Channel/Orderer did not compile: Error unmarshalling to ImplicitMetaPolicy: "),
        "{err}"
    );
    assert_eq!(
        build(config_policy(
            PolicyType::Signature,
            SignaturePolicyEnvelope {
                version: 1,
                rule: Some(signed_by(0)),
                identities: vec![member("Org1MSP")],
            }
            .encode_to_vec()
        )),
        "policy Bad at path Channel/Orderer did not compile: This evaluator only understands messages of version 0, but version was 1"
    );
    assert_eq!(
        build(signature(
            n_out_of(1, vec![signed_by(1)]),
            vec![member("Org1MSP")]
        )),
        "policy Bad at path Channel/Orderer did not compile: identity index out of range, requested 1, but identities length is 1"
    );
    assert_eq!(
        build(signature(signed_by(-1), vec![member("Org1MSP")])),
        "policy Bad at path Channel/Orderer did not compile: identity index out of range, requested -1, but identities length is 1"
    );
    assert_eq!(
        build(config_policy(
            PolicyType::Signature,
            SignaturePolicyEnvelope::default().encode_to_vec()
        )),
        "policy Bad at path Channel/Orderer did not compile: Empty policy element"
    );
    assert_eq!(
        build(signature(SignaturePolicy { r#type: None }, vec![])),
        "policy Bad at path Channel/Orderer did not compile: Unknown type: <nil>:<nil>"
    );
    // A channel config with a broken policy does not parse.
    let mut config = etcdraft_config().config;
    config
        .channel_group
        .as_mut()
        .unwrap()
        .policies
        .insert("Writers".into(), config_policy(PolicyType::Msp, vec![]));
    let err = crate::config::ChannelConfig::from_config("mychannel", &config, C)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "initializing policymanager failed: policy Writers at path Channel has unknown policy type: 2"
    );
}
