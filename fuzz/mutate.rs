//! Byte-level mutations of seed inputs, as a coverage-guided fuzzer would make them: flips,
//! inserts, deletions, repeats, dictionary tokens and splices of two seeds.

use proptest::prelude::*;
use proptest::sample::{Index, select};

/// One edit of an input.
#[derive(Clone, Debug)]
enum Edit {
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index, u8),
    Repeat(Index, u8),
    Token(Index, &'static [u8]),
    Splice(Index, Index, Index),
    Truncate(Index),
}

/// A seed from `seeds` with up to eight edits, tokens taken from `dictionary`.
pub(crate) fn mutated(
    seeds: Vec<Vec<u8>>,
    dictionary: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    let edit = prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Replace(at, byte)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Insert(at, byte)),
        (any::<Index>(), 1u8..16).prop_map(|(at, len)| Edit::Delete(at, len)),
        (any::<Index>(), 1u8..16).prop_map(|(at, len)| Edit::Repeat(at, len)),
        (any::<Index>(), select(dictionary)).prop_map(|(at, token)| Edit::Token(at, token)),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(other, at, from)| Edit::Splice(other, at, from)),
        any::<Index>().prop_map(Edit::Truncate),
    ];
    let all = seeds.clone();

    (select(seeds), prop::collection::vec(edit, 0..8)).prop_map(move |(seed, edits)| {
        edits
            .into_iter()
            .fold(seed, |input, edit| apply(input, edit, &all))
    })
}

fn apply(mut input: Vec<u8>, edit: Edit, seeds: &[Vec<u8>]) -> Vec<u8> {
    let len = input.len();
    let end = |at: usize, count: u8| (at + usize::from(count)).min(len);

    match edit {
        Edit::Replace(at, byte) if len > 0 => input[at.index(len)] = byte,
        Edit::Replace(_, byte) => input.push(byte),
        Edit::Insert(at, byte) => input.insert(at.index(len + 1), byte),
        Edit::Delete(at, count) if len > 0 => {
            let at = at.index(len);
            input.drain(at..end(at, count));
        }
        Edit::Repeat(at, count) if len > 0 => {
            let at = at.index(len);
            let copy = input[at..end(at, count)].to_vec();
            input.splice(at..at, copy);
        }
        Edit::Delete(..) | Edit::Repeat(..) => {}
        Edit::Token(at, token) => {
            let at = at.index(len + 1);
            input.splice(at..at, token.iter().copied());
        }
        Edit::Splice(other, at, from) => {
            let other = &seeds[other.index(seeds.len())];
            input.truncate(at.index(len + 1));
            input.extend_from_slice(&other[from.index(other.len() + 1)..]);
        }
        Edit::Truncate(at) => input.truncate(at.index(len + 1)),
    }
    input
}
