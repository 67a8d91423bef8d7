//! [`text_enum!`](crate::db::text_enum): a state kept in a `TEXT` column as a Rust enum.
//!
//! One invocation declares the enum and gives it everything a state needs: its text (the same
//! text the migrations' `CHECK` lists hold), parsing, `Display`, serde as that text, clap's
//! `ValueEnum` for `--status`/`--type` flags, and diesel's `ToSql`/`FromSql` over `Text`,
//! generic over the backend so one pair serves SQLite, PostgreSQL and the connection enum.
//! A new state is one line in the invocation (and one word in the migration's `CHECK`).

use std::fmt;

/// A text that names none of an enum's states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownText {
    /// The enum's name (`OutboxStatus`, …).
    pub kind: &'static str,
    /// The text as found.
    pub text: String,
    /// The texts it could have been.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a {} (expected one of: {})",
            self.text,
            self.kind,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownText {}

/// Declares a state enum stored as text. Each variant is `Name = "text",`.
///
/// ```ignore
/// crate::db::text_enum! {
///     /// Where an order is in the outbox.
///     pub enum OutboxStatus {
///         /// Waiting for its first or next push.
///         Pending = "pending",
///         Dead = "dead",
///     }
/// }
/// ```
#[allow(unused_macros)]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every state's text, in declaration order.
            pub const TEXTS: &'static [&'static str] = &[$($text),+];

            /// The text stored in the database and shown to users.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The state `text` names, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::db::text_enum::UnknownText;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text).ok_or_else(|| $crate::db::text_enum::UnknownText {
                    kind: stringify!($name),
                    text: text.to_owned(),
                    expected: Self::TEXTS,
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Self::parse(&text).ok_or_else(|| {
                    <D::Error as serde::de::Error>::unknown_variant(&text, Self::TEXTS)
                })
            }
        }

        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.as_str()))
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text =
                    <String as diesel::deserialize::FromSql<diesel::sql_types::Text, DB>>::from_sql(bytes)?;
                text.parse::<Self>().map_err(Into::into)
            }
        }
    };
}

#[allow(unused_imports)] // used by the state enums of `orders` and `runs`
pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    use crate::db::DbConnection;
    use diesel::prelude::*;

    text_enum! {
        /// A state for the tests.
        pub enum Colour {
            /// The first.
            Red = "red",
            Light = "light_blue",
        }
    }

    #[test]
    fn text_parse_and_display_agree() {
        for colour in Colour::ALL {
            assert_eq!(colour.as_str().parse::<Colour>(), Ok(*colour));
            assert_eq!(colour.to_string(), colour.as_str());
        }
        let err = "blue".parse::<Colour>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"blue\" is not a Colour (expected one of: red, light_blue)"
        );
    }

    #[test]
    fn serde_uses_the_text() {
        assert_eq!(serde_json::to_string(&Colour::Light).unwrap(), "\"light_blue\"");
        assert_eq!(serde_json::from_str::<Colour>("\"red\"").unwrap(), Colour::Red);
        assert!(serde_json::from_str::<Colour>("\"Red\"").is_err());
    }

    #[test]
    fn clap_takes_the_text() {
        use clap::ValueEnum as _;
        assert_eq!(Colour::from_str("light_blue", false), Ok(Colour::Light));
    }

    #[test]
    fn states_go_to_and_from_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut conn =
            DbConnection::Sqlite(diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap());
        diesel::sql_query("CREATE TABLE t (c TEXT NOT NULL)")
            .execute(&mut conn)
            .unwrap();
        diesel::table! { t (c) { c -> Text, } }
        for colour in Colour::ALL {
            diesel::insert_into(t::table)
                .values(t::c.eq(colour))
                .execute(&mut conn)
                .unwrap();
        }
        let read: Vec<Colour> = t::table.select(t::c).order(t::c).load(&mut conn).unwrap();
        assert_eq!(read, vec![Colour::Light, Colour::Red]);
        let filtered: i64 = t::table
            .filter(t::c.eq(Colour::Light))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(filtered, 1);
        diesel::sql_query("INSERT INTO t VALUES ('green')")
            .execute(&mut conn)
            .unwrap();
        let err = t::table.select(t::c).load::<Colour>(&mut conn).unwrap_err();
        let mut chain = vec![err.to_string()];
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        assert!(
            chain
                .iter()
                .any(|text| text.contains("\"green\" is not a Colour")),
            "{chain:?}"
        );
    }
}
