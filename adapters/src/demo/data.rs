//! Deterministic generation of the scenario rows.
//!
//! Everything is drawn from one xorshift generator with a fixed seed, in a fixed
//! order, so the rows (and so the database files) are the same on every run. Changing
//! the order of draws changes the data: tests pin the facts the scenario relies on,
//! not individual values.

use rusqlite::types::Value;

use super::names::{
    COMMUNITIES, ENTERPRISES, FINDINGS, GOODS_CLASSES, PARKS, PLATE_LETTERS, Status,
};
use super::rng::{Person, Rng, USCC_CHARS, uscc_check};
use super::{SCENARIO_SHUTDOWN_ADDRESS, SCENARIO_SHUTDOWN_NAME, SCENARIO_SHUTDOWN_USCC};

const SEED: u64 = 0x5943_5741_4E47_2026; // "YIWANG" 2026

/// The rows of one table, in the column order of [`super::scenario_tables`].
pub(super) struct TableRows {
    pub table: &'static str,
    /// Column lists of the secondary indexes to create.
    pub indexes: &'static [&'static str],
    pub rows: Vec<Vec<Value>>,
}

pub(super) fn generate() -> Vec<TableRows> {
    let mut rng = Rng(SEED);
    let enterprises = enterprises(&mut rng);
    let drivers: Vec<Person> = (0..200)
        .map(|_| {
            let county = PARKS[rng.below(PARKS.len())].county;
            Person::new(&mut rng, county)
        })
        .collect();
    vec![
        hazchem_enterprises(&enterprises),
        enforcement_inspections(&mut rng, &enterprises),
        hazmat_truck_checkpoints(&mut rng, &enterprises, &drivers),
        driver_qualifications(&mut rng, &drivers),
        enterprise_hourly_power(&mut rng, &enterprises),
        resident_power_accounts(&mut rng),
    ]
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// Rounded to one decimal, as meters report.
fn kwh(x: f64) -> Value {
    Value::Real((x * 10.0).round() / 10.0)
}

pub(super) fn date(year: u32, month: u32, day: u32) -> String {
    format!("{year:04}-{month:02}-{day:02}")
}

struct Enterprise {
    uscc: String,
    name: &'static str,
    address: String,
    park: usize,
    status: Status,
    goods: usize,
    capacity: u32,
    account_no: String,
    legal_rep: Person,
    licence_no: String,
    licence_expiry: String,
    remark: Option<&'static str>,
}

fn enterprises(rng: &mut Rng) -> Vec<Enterprise> {
    ENTERPRISES
        .iter()
        .enumerate()
        .map(|(i, &(name, park, status, goods))| {
            let county = PARKS[park].county;
            let shut = status == Status::Shutdown;
            let org: String = (0..7)
                .map(|_| char::from(USCC_CHARS[rng.below(USCC_CHARS.len())]))
                .collect();
            let body = format!("91{county}MA{org}");
            let roads = PARKS[park].roads;
            let address = format!(
                "{}{}{}号",
                PARKS[park].prefix,
                roads[rng.below(roads.len())],
                rng.between(1, 188)
            );
            let capacity = rng.between(5, 300) * 1000;
            let expiry = date(rng.between(2027, 2029), rng.between(1, 12), rng.between(1, 28));
            let remark = match status {
                Status::Shutdown => Some(
                    "2026年3月因重大事故隐患拒不整改被依法责令关停，安全生产许可证已注销；厂房已出租",
                ),
                Status::Suspended => Some(
                    "2026年9月因重大危险源安全监控不到位被责令停产整顿，整改期间停止生产",
                ),
                Status::Normal if rng.percent(25) => Some("涉及重点监管危险化工工艺"),
                Status::Normal => None,
            };
            Enterprise {
                uscc: if shut {
                    SCENARIO_SHUTDOWN_USCC.to_string()
                } else {
                    format!("{body}{}", uscc_check(&body))
                },
                name,
                address: if shut {
                    SCENARIO_SHUTDOWN_ADDRESS.to_string()
                } else {
                    address
                },
                park,
                status,
                goods,
                capacity: if shut { 30_000 } else { capacity },
                // Unique: the index is part of the number.
                account_no: format!("32{:02}{}", 10 + i, rng.digits(6)),
                legal_rep: Person::new(rng, county),
                licence_no: format!("(苏)WH安许证字[F{:05}]", 200 + i * 10 + rng.below(10)),
                licence_expiry: expiry,
                remark,
            }
        })
        .collect()
}

fn hazchem_enterprises(enterprises: &[Enterprise]) -> TableRows {
    debug_assert!(enterprises.iter().any(|e| e.name == SCENARIO_SHUTDOWN_NAME));
    let rows = enterprises
        .iter()
        .map(|e| {
            vec![
                text(&e.uscc),
                text(e.name),
                text(&e.address),
                text(&e.licence_no),
                text(&e.licence_expiry),
                text(e.status.as_str()),
                text(&e.legal_rep.name),
                text(&e.legal_rep.id_no),
                text(&e.legal_rep.phone),
                Value::Integer(i64::from(e.capacity)),
                e.remark.map_or(Value::Null, text),
            ]
        })
        .collect();
    TableRows {
        table: "hazchem_enterprises",
        indexes: &["uscc", "status"],
        rows,
    }
}

fn enforcement_inspections(rng: &mut Rng, enterprises: &[Enterprise]) -> TableRows {
    let inspectors: Vec<String> = (0..12).map(|_| Person::new(rng, "320600").name).collect();
    // (time, uscc, findings, penalty in yuan)
    let mut records: Vec<(String, &str, String, f64)> = Vec::new();
    for e in enterprises {
        match e.status {
            Status::Shutdown => {
                records.push((
                    "2025-11-18 09:30:00".into(),
                    &e.uscc,
                    FINDINGS[4].0.into(),
                    20_000.0,
                ));
                records.push((
                    "2026-03-12 10:00:00".into(),
                    &e.uscc,
                    "存在重大事故隐患：甲类仓库与生产装置防火间距不足，逾期拒不整改，依法责令关停"
                        .into(),
                    200_000.0,
                ));
                records.push((
                    "2026-06-23 14:30:00".into(),
                    &e.uscc,
                    "复查：已停止生产，生产装置未拆除，厂房已出租给他人使用".into(),
                    0.0,
                ));
            }
            Status::Suspended => records.push((
                format!(
                    "{} 09:{:02}:00",
                    date(2026, 9, rng.between(2, 20)),
                    rng.below(60)
                ),
                &e.uscc,
                format!("{}，责令停产整顿", FINDINGS[3].0),
                f64::from(rng.between(50, 100) * 1000),
            )),
            Status::Normal => {}
        }
    }
    let normal: Vec<&Enterprise> = enterprises
        .iter()
        .filter(|e| e.status == Status::Normal)
        .collect();
    while records.len() < 100 {
        let e = normal[rng.below(normal.len())];
        let (year, month) = if rng.percent(45) {
            (2025, rng.between(1, 12))
        } else {
            (2026, rng.between(1, 10))
        };
        let at = format!(
            "{} {:02}:{:02}:00",
            date(year, month, rng.between(1, 28)),
            rng.between(8, 16),
            rng.below(60)
        );
        let (findings, lo, hi) = FINDINGS[rng.below(FINDINGS.len())];
        records.push((
            at,
            &e.uscc,
            findings.into(),
            f64::from(rng.between(lo, hi) * 1000),
        ));
    }
    records.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seq_in_year = (String::new(), 0);
    let rows = records
        .into_iter()
        .map(|(at, uscc, findings, penalty)| {
            let year = at[..4].to_string();
            if seq_in_year.0 != year {
                seq_in_year = (year.clone(), 0);
            }
            seq_in_year.1 += 1;
            let first = rng.below(inspectors.len());
            let second = (first + 1 + rng.below(inspectors.len() - 1)) % inspectors.len();
            vec![
                text(format!("JC{year}-{:04}", seq_in_year.1)),
                text(uscc),
                text(at),
                text(format!("{}、{}", inspectors[first], inspectors[second])),
                text(findings),
                Value::Real(penalty),
            ]
        })
        .collect();
    TableRows {
        table: "enforcement_inspections",
        indexes: &["uscc"],
        rows,
    }
}

/// A plate such as 苏FA1234 (one in seven from another city).
fn plate(rng: &mut Rng) -> String {
    let prefix = if rng.percent(85) {
        "苏F"
    } else {
        ["苏E", "苏B", "苏A", "沪B", "浙F"][rng.below(5)]
    };
    let letter = char::from(PLATE_LETTERS[rng.below(PLATE_LETTERS.len())]);
    format!("{prefix}{letter}{}", rng.digits(4))
}

fn hazmat_truck_checkpoints(
    rng: &mut Rng,
    enterprises: &[Enterprise],
    drivers: &[Person],
) -> TableRows {
    // (plate, driver index): 120 regular trucks, then the 3 that serve the shut plant.
    let mut fleet: Vec<(String, usize)> = Vec::new();
    while fleet.len() < 123 {
        let candidate = plate(rng);
        if fleet.iter().all(|(p, _)| *p != candidate) {
            // Drivers 0..120 drive the regular trucks, 150..153 the other three.
            let driver = if fleet.len() < 120 {
                fleet.len()
            } else {
                fleet.len() + 30
            };
            fleet.push((candidate, driver));
        }
    }
    let normal: Vec<&Enterprise> = enterprises
        .iter()
        .filter(|e| e.status == Status::Normal)
        .collect();
    // (pass time, enterprise, truck, goods class)
    let mut passes: Vec<(String, &Enterprise, usize, usize)> = Vec::new();
    let time = |day: u32, hour: u32, rng: &mut Rng| {
        format!(
            "{} {hour:02}:{:02}:{:02}",
            date(2026, 10, day),
            rng.below(60),
            rng.below(60)
        )
    };
    for day in 1..=31 {
        // Fewer deliveries during the National Day holiday (1 to 7 October).
        let count = if day <= 7 {
            55 + rng.below(20)
        } else {
            90 + rng.below(30)
        };
        for _ in 0..count {
            let e = normal[rng.below(normal.len())];
            // A few plants run around the clock and take night deliveries.
            let hour = if rng.percent(2) {
                [22, 23, 0, 1, 2, 3, 4][rng.below(7)]
            } else {
                rng.between(7, 19)
            };
            let goods = if rng.percent(80) {
                e.goods
            } else {
                rng.below(GOODS_CLASSES.len())
            };
            passes.push((time(day, hour, rng), e, rng.below(120), goods));
        }
    }
    for e in enterprises {
        match e.status {
            // Hazardous waste collected in daytime; no night activity.
            Status::Suspended => {
                for _ in 0..1 + rng.below(2) {
                    let at = time(rng.between(8, 30), rng.between(9, 16), rng);
                    passes.push((at, e, rng.below(120), 6));
                }
            }
            // The shut plant: night deliveries only, by three trucks.
            Status::Shutdown => {
                for _ in 0..32 {
                    let hour = [22, 23, 0, 1, 2, 3, 4][rng.below(7)];
                    let goods = if rng.percent(75) { 1 } else { 5 };
                    passes.push((
                        time(rng.between(1, 31), hour, rng),
                        e,
                        120 + rng.below(3),
                        goods,
                    ));
                }
            }
            Status::Normal => {}
        }
    }
    passes.sort_by(|a, b| a.0.cmp(&b.0));
    let rows = passes
        .into_iter()
        .enumerate()
        .map(|(i, (at, e, truck, goods))| {
            let (plate, driver) = &fleet[truck];
            let checkpoints = PARKS[e.park].checkpoints;
            let checkpoint = if e.status == Status::Shutdown {
                checkpoints[0]
            } else {
                checkpoints[rng.below(checkpoints.len())]
            };
            vec![
                Value::Integer(i as i64 + 1),
                text(plate),
                text(checkpoint),
                text(at),
                text(&e.uscc),
                text(e.name),
                text(&e.address),
                text(GOODS_CLASSES[goods]),
                text(&drivers[*driver].id_no),
                text(&drivers[*driver].phone),
            ]
        })
        .collect();
    TableRows {
        table: "hazmat_truck_checkpoints",
        indexes: &["consignee_uscc", "pass_time"],
        rows,
    }
}

fn driver_qualifications(rng: &mut Rng, drivers: &[Person]) -> TableRows {
    let rows = drivers
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let class = if rng.percent(70) { "A2" } else { "B2" };
            vec![
                text(&d.id_no),
                text(&d.name),
                text(class),
                text(format!(
                    "320600{}{:06}",
                    rng.between(2010, 2024),
                    1000 + i * 7
                )),
                text(date(
                    rng.between(2026, 2031),
                    rng.between(1, 12),
                    rng.between(1, 28),
                )),
            ]
        })
        .collect();
    TableRows {
        table: "driver_qualifications",
        indexes: &["id_no"],
        rows,
    }
}

fn enterprise_hourly_power(rng: &mut Rng, enterprises: &[Enterprise]) -> TableRows {
    let mut rows = Vec::with_capacity(enterprises.len() * 31 * 24);
    for e in enterprises {
        // Full-load consumption per hour, from the plant's capacity.
        let base = f64::from(e.capacity) / 120.0;
        for day in 1..=31u32 {
            // 1 October 2026 is a Thursday; 1 to 7 October is the National Day holiday.
            let weekday = (day + 2) % 7;
            let day_factor = if day <= 7 {
                0.5
            } else if weekday >= 5 {
                0.75
            } else {
                1.0
            };
            for hour in 0..24u32 {
                let night = !(5..22).contains(&hour);
                let value = match e.status {
                    Status::Normal => {
                        let profile = match hour {
                            8..=17 => 1.0,
                            6 | 7 | 18..=21 => 0.65,
                            _ => 0.3,
                        };
                        base * profile * day_factor * rng.real(0.85, 1.15)
                    }
                    // Security lighting and monitoring only.
                    Status::Suspended => rng.real(0.2, 1.8),
                    // Someone works the premises at night.
                    Status::Shutdown if night => rng.real(45.0, 80.0),
                    Status::Shutdown if hour == 5 || hour == 21 => rng.real(12.0, 25.0),
                    Status::Shutdown => rng.real(3.0, 9.0),
                };
                rows.push(vec![
                    text(&e.account_no),
                    text(&e.uscc),
                    text(format!("{} {hour:02}:00", date(2026, 10, day))),
                    kwh(value),
                ]);
            }
        }
    }
    TableRows {
        table: "enterprise_hourly_power",
        indexes: &["uscc, hour"],
        rows,
    }
}

fn resident_power_accounts(rng: &mut Rng) -> TableRows {
    let rows = (0..200)
        .map(|i| {
            let community = COMMUNITIES[rng.below(COMMUNITIES.len())];
            let county = ["320602", "320612", "320614", "320623", "320682"][rng.below(5)];
            let holder = Person::new(rng, county);
            vec![
                text(format!("31{:04}{}", 1000 + i, rng.digits(4))),
                text(holder.name),
                text(holder.id_no),
                text(format!(
                    "{community}{}幢{}0{}室",
                    rng.between(1, 36),
                    rng.between(1, 18),
                    rng.between(1, 4)
                )),
                kwh(rng.real(80.0, 650.0)),
            ]
        })
        .collect();
    TableRows {
        table: "resident_power_accounts",
        indexes: &[],
        rows,
    }
}
