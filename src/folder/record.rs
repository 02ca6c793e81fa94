//! The one way a run-folder CSV row is declared: [`csv_record!`] takes the
//! columns before the per-kind error counts, then those after, and writes
//! the struct, its serde impls (the same bytes and the same leniency as
//! `#[derive]` with `#[serde(default)]`) and its field table. The error
//! counts are one array indexed by [`ErrorKind`], whose columns
//! (`errors_<label>`) come from [`ErrorKind::ALL`]: a new kind is an edit
//! of `fault.rs` only.

use crate::fault::ErrorKind;

/// Per-kind error counts, indexed as [`ErrorKind::ALL`].
pub type ErrorCounts = [u64; ErrorKind::ALL.len()];

/// A cell type of a run-folder row, read and written as a number.
pub trait Cell {
    /// The value as a number (`None`: empty, or not a number).
    fn number(&self) -> Option<f64>;
    /// Sets the cell from a number (rounded for integer cells).
    fn set_number(&mut self, v: f64);
    /// True for integer cells.
    const INTEGRAL: bool;
}

macro_rules! cell_int {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn number(&self) -> Option<f64> { Some(*self as f64) }
            fn set_number(&mut self, v: f64) { *self = v.round() as $t }
            const INTEGRAL: bool = true;
        }
        impl Cell for Option<$t> {
            fn number(&self) -> Option<f64> { self.map(|v| v as f64) }
            fn set_number(&mut self, v: f64) { *self = Some(v.round() as $t) }
            const INTEGRAL: bool = true;
        }
    )*};
}
cell_int!(u64, i64, u8, usize);

impl Cell for f64 {
    fn number(&self) -> Option<f64> {
        Some(*self)
    }
    fn set_number(&mut self, v: f64) {
        *self = v
    }
    const INTEGRAL: bool = false;
}

impl Cell for Option<f64> {
    fn number(&self) -> Option<f64> {
        *self
    }
    fn set_number(&mut self, v: f64) {
        *self = Some(v)
    }
    const INTEGRAL: bool = false;
}

impl Cell for bool {
    fn number(&self) -> Option<f64> {
        Some(f64::from(u8::from(*self)))
    }
    fn set_number(&mut self, v: f64) {
        *self = v != 0.0
    }
    const INTEGRAL: bool = true;
}

impl Cell for String {
    fn number(&self) -> Option<f64> {
        None
    }
    fn set_number(&mut self, _: f64) {}
    const INTEGRAL: bool = false;
}

impl Cell for Option<String> {
    fn number(&self) -> Option<f64> {
        None
    }
    fn set_number(&mut self, _: f64) {}
    const INTEGRAL: bool = false;
}

/// How a field of a row is reached.
pub enum Access<R: 'static> {
    /// A field of its own: read and set as a number.
    Field {
        /// Reads the cell as a number.
        get: fn(&R) -> Option<f64>,
        /// Sets the cell from a number.
        set: fn(&mut R, f64),
        /// Integer cell.
        integral: bool,
        /// Text cell (never a number).
        text: bool,
    },
    /// One entry of the per-kind error counts.
    Error(ErrorKind),
}

/// One column of a row type, in file order.
pub struct Field<R: 'static, I: 'static> {
    /// Column name.
    pub name: &'static str,
    /// Documentation attached in the declaration (`None` when the record
    /// carries none).
    pub info: Option<I>,
    /// How to reach it.
    pub access: Access<R>,
}

/// Declares a run-folder row (without `errors; { ... }`: a row with no
/// error columns). Syntax:
///
/// ```text
/// csv_record! {
///     /// docs
///     pub struct Name [Info] {
///         field: Type => info_expr,   // `=> info_expr` optional
///         ...
///     }
///     errors;                          // the errors_<kind> columns
///     { field: Type, ... }
/// }
/// ```
macro_rules! csv_record {
    (
        $(#[$sm:meta])*
        pub struct $name:ident [$info:ty] {
            $( $(#[$hm:meta])* $hf:ident : $ht:ty $(=> $hi:expr)? ),* $(,)?
        }
        errors;
        {
            $( $(#[$tm:meta])* $tf:ident : $tt:ty $(=> $ti:expr)? ),* $(,)?
        }
    ) => {
        $(#[$sm])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$hm])* pub $hf: $ht, )*
            /// Failed exchanges by kind (columns `errors_<label>`), indexed
            /// as `ErrorKind::ALL`.
            pub errors_by_kind: $crate::folder::record::ErrorCounts,
            $( $(#[$tm])* pub $tf: $tt, )*
        }

        impl $name {
            /// The `errors_<kind>` count of `kind`.
            pub fn errors_of(&self, kind: $crate::fault::ErrorKind) -> u64 {
                self.errors_by_kind[kind.index()]
            }

            /// Every column in file order, with its documentation.
            pub fn fields() -> Vec<$crate::folder::record::Field<$name, $info>> {
                use $crate::folder::record::{Access, Cell, Field};
                let mut out = vec![$(
                    Field {
                        name: stringify!($hf),
                        info: $crate::folder::record::opt!($($hi)?),
                        access: Access::Field {
                            get: |r: &$name| Cell::number(&r.$hf),
                            set: |r: &mut $name, v| Cell::set_number(&mut r.$hf, v),
                            integral: <$ht as Cell>::INTEGRAL,
                            text: $crate::folder::record::is_text(stringify!($ht)),
                        },
                    },
                )*];
                for k in $crate::fault::ErrorKind::ALL {
                    out.push(Field { name: k.column(), info: None, access: Access::Error(k) });
                }
                $(
                    out.push(Field {
                        name: stringify!($tf),
                        info: $crate::folder::record::opt!($($ti)?),
                        access: Access::Field {
                            get: |r: &$name| Cell::number(&r.$tf),
                            set: |r: &mut $name, v| Cell::set_number(&mut r.$tf, v),
                            integral: <$tt as Cell>::INTEGRAL,
                            text: $crate::folder::record::is_text(stringify!($tt)),
                        },
                    });
                )*
                out
            }
        }

        impl $crate::folder::record::HasErrors for $name {
            fn errors(&self) -> &$crate::folder::record::ErrorCounts {
                &self.errors_by_kind
            }
            fn errors_mut(&mut self) -> Option<&mut $crate::folder::record::ErrorCounts> {
                Some(&mut self.errors_by_kind)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let n = [$(stringify!($hf),)* $(stringify!($tf),)*].len()
                    + $crate::fault::ErrorKind::ALL.len();
                let mut st = s.serialize_struct(stringify!($name), n)?;
                $( st.serialize_field(stringify!($hf), &self.$hf)?; )*
                for k in $crate::fault::ErrorKind::ALL {
                    st.serialize_field(k.column(), &self.errors_by_kind[k.index()])?;
                }
                $( st.serialize_field(stringify!($tf), &self.$tf)?; )*
                st.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name)))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        let mut row = $name::default();
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $( stringify!($hf) => row.$hf = map.next_value()?, )*
                                $( stringify!($tf) => row.$tf = map.next_value()?, )*
                                other => match $crate::fault::ErrorKind::ALL
                                    .iter()
                                    .find(|k| k.column() == other)
                                {
                                    Some(k) => row.errors_by_kind[k.index()] = map.next_value()?,
                                    None => {
                                        map.next_value::<serde::de::IgnoredAny>()?;
                                    }
                                },
                            }
                        }
                        Ok(row)
                    }
                }
                const FIELDS: &[&str] = &[$(stringify!($hf),)* $(stringify!($tf),)*];
                d.deserialize_struct(stringify!($name), FIELDS, V)
            }
        }
    };
    // A row without the per-kind error counts.
    (
        $(#[$sm:meta])*
        pub struct $name:ident [$info:ty] {
            $( $(#[$hm:meta])* $hf:ident : $ht:ty $(=> $hi:expr)? ),* $(,)?
        }
    ) => {
        $(#[$sm])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$hm])* pub $hf: $ht, )*
        }

        impl $name {
            /// Every column in file order, with its documentation.
            pub fn fields() -> Vec<$crate::folder::record::Field<$name, $info>> {
                use $crate::folder::record::{Access, Cell, Field};
                vec![$(
                    Field {
                        name: stringify!($hf),
                        info: $crate::folder::record::opt!($($hi)?),
                        access: Access::Field {
                            get: |r: &$name| Cell::number(&r.$hf),
                            set: |r: &mut $name, v| Cell::set_number(&mut r.$hf, v),
                            integral: <$ht as Cell>::INTEGRAL,
                            text: $crate::folder::record::is_text(stringify!($ht)),
                        },
                    },
                )*]
            }
        }

        impl $crate::folder::record::HasErrors for $name {
            fn errors(&self) -> &$crate::folder::record::ErrorCounts {
                const NONE: $crate::folder::record::ErrorCounts =
                    [0; $crate::fault::ErrorKind::ALL.len()];
                &NONE
            }
            fn errors_mut(&mut self) -> Option<&mut $crate::folder::record::ErrorCounts> {
                None
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let n = [$(stringify!($hf),)*].len();
                let mut st = s.serialize_struct(stringify!($name), n)?;
                $( st.serialize_field(stringify!($hf), &self.$hf)?; )*
                st.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name)))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        let mut row = $name::default();
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $( stringify!($hf) => row.$hf = map.next_value()?, )*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(row)
                    }
                }
                const FIELDS: &[&str] = &[$(stringify!($hf),)*];
                d.deserialize_struct(stringify!($name), FIELDS, V)
            }
        }
    };
}
pub(crate) use csv_record;

macro_rules! opt {
    () => {
        None
    };
    ($e:expr) => {
        Some($e)
    };
}
pub(crate) use opt;

/// True for a text cell type, by its spelling in the declaration.
pub const fn is_text(ty: &str) -> bool {
    matches!(
        ty.as_bytes(),
        b"String" | b"Option<String>" | b"Option < String >"
    )
}

impl<R, I> Field<R, I> {
    /// The cell of `row` as a number (`None`: empty or text).
    pub fn number(&self, row: &R) -> Option<f64>
    where
        R: HasErrors,
    {
        match &self.access {
            Access::Field { get, .. } => get(row),
            Access::Error(k) => Some(row.errors()[k.index()] as f64),
        }
    }

    /// Sets the cell of `row` from a number.
    pub fn set_number(&self, row: &mut R, v: f64)
    where
        R: HasErrors,
    {
        match &self.access {
            Access::Field { set, .. } => set(row, v),
            Access::Error(k) => {
                if let Some(e) = row.errors_mut() {
                    e[k.index()] = v.round() as u64
                }
            }
        }
    }

    /// True for numeric cells.
    pub fn is_numeric(&self) -> bool {
        !matches!(self.access, Access::Field { text: true, .. })
    }

    /// True for integer cells.
    pub fn is_integral(&self) -> bool {
        match self.access {
            Access::Field { integral, .. } => integral,
            Access::Error(_) => true,
        }
    }
}

/// Rows that carry per-kind error counts.
pub trait HasErrors {
    /// The counts.
    fn errors(&self) -> &ErrorCounts;
    /// The counts, to change (`None`: a row without error columns).
    fn errors_mut(&mut self) -> Option<&mut ErrorCounts>;
}
