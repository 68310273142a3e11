//! Site rules: host patterns mapped to content selectors and selectors to
//! remove. The built-in rules (`rules/sites.toml`) cover the Chinese-language
//! news sources this archive is made for; `--rules-file` adds more, and its
//! rules are tried first.

use scraper::Selector;
use serde::Deserialize;

use crate::error::ExtractError;

const BUILTIN: &str = include_str!("../rules/sites.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    site: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    hosts: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    content: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

/// One site's rule, with parsed selectors.
#[derive(Debug, Clone)]
pub struct SiteRule {
    /// Human-readable name.
    pub name: String,
    /// Hosts it applies to; a host also matches its subdomains.
    pub hosts: Vec<String>,
    /// Path prefixes it applies to; empty means every path.
    pub paths: Vec<String>,
    /// Selectors of the content, in document order.
    pub content: Vec<Selector>,
    /// Selectors of what to remove from the content.
    pub remove: Vec<Selector>,
}

/// An ordered set of rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<SiteRule>,
}

impl Rules {
    /// The built-in rules.
    pub fn builtin() -> Rules {
        Rules::parse(BUILTIN).expect("built-in rules are valid")
    }

    /// Built-in rules, with the rules of `extra` (TOML text) tried first.
    pub fn with_extra(extra: &str) -> Result<Rules, ExtractError> {
        let mut rules = Rules::parse(extra)?;
        rules.rules.extend(Rules::builtin().rules);
        Ok(rules)
    }

    /// Parses a rules file.
    pub fn parse(text: &str) -> Result<Rules, ExtractError> {
        let file: RulesFile =
            toml::from_str(text).map_err(|e| ExtractError::Rules(e.to_string()))?;
        let selectors = |list: &[String], rule: &str| -> Result<Vec<Selector>, ExtractError> {
            list.iter()
                .map(|s| {
                    Selector::parse(s)
                        .map_err(|e| ExtractError::Rules(format!("{rule}: selector `{s}`: {e}")))
                })
                .collect()
        };
        let rules = file
            .site
            .into_iter()
            .map(|r| {
                Ok(SiteRule {
                    content: selectors(&r.content, &r.name)?,
                    remove: selectors(&r.remove, &r.name)?,
                    hosts: r
                        .hosts
                        .into_iter()
                        .map(|h| h.to_ascii_lowercase())
                        .collect(),
                    paths: r.paths,
                    name: r.name,
                })
            })
            .collect::<Result<_, ExtractError>>()?;
        Ok(Rules { rules })
    }

    /// The first rule matching `url`'s host and path.
    pub fn find(&self, url: &url::Url) -> Option<&SiteRule> {
        let host = url.host_str()?.to_ascii_lowercase();
        let path = url.path();
        self.rules.iter().find(|r| {
            r.hosts
                .iter()
                .any(|h| host == *h || host.ends_with(&format!(".{h}")))
                && (r.paths.is_empty() || r.paths.iter().any(|p| path.starts_with(p.as_str())))
        })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// No rules at all?
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_cover_the_archive_sources() {
        let rules = Rules::builtin();
        for url in [
            "https://www.rfi.fr/cn/亚洲/20231109-x",
            "https://www.bbc.com/zhongwen/simp/world-67345678",
            "https://www.dw.com/zh/标题/a-67345678",
            "https://www.voachinese.com/a/x-20231109/7345678.html",
            "https://cn.nytimes.com/world/20231109/x/",
            "https://www.rfa.org/mandarin/yataibaodao/x.html",
            "https://chinadigitaltimes.net/chinese/123456.html",
        ] {
            let u = url::Url::parse(url).unwrap();
            assert!(rules.find(&u).is_some(), "no rule for {url}");
        }
        assert!(rules
            .find(&url::Url::parse("https://www.rfi.fr/fr/x").unwrap())
            .is_none());
    }

    #[test]
    fn extra_rules_come_first_and_bad_ones_are_rejected() {
        let extra = "[[site]]\nname = \"mine\"\nhosts = [\"rfi.fr\"]\ncontent = [\"main\"]\n";
        let rules = Rules::with_extra(extra).unwrap();
        let u = url::Url::parse("https://www.rfi.fr/cn/x").unwrap();
        assert_eq!(rules.find(&u).unwrap().name, "mine");
        assert!(Rules::parse("[[site]]\nname = \"x\"\nhosts = []\ncontent = [\"<<\"]\n").is_err());
        assert!(
            Rules::parse("[[site]]\nname = \"x\"\nhosts = []\ncontent = []\nbogus = 1\n").is_err()
        );
    }
}
