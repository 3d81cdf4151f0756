pub mod copy;
pub mod flash;
pub mod form;
pub mod layout;
pub mod markup;
pub mod time;
