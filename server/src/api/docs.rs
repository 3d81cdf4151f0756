//! `GET /api/docs`: the JSON API's reference as a plain server-rendered page, made from the
//! same OpenAPI document that `/api/v1/openapi.json` serves (no Swagger UI bundle, no
//! script). Every text that comes from the document is HTML-escaped.

use super::openapi::spec;
use axum::{extract::State, response::Html};
use leptos::config::LeptosOptions;
use std::{fmt::Write, sync::OnceLock};
use utoipa::openapi::{
    path::{Operation, Parameter, ParameterIn},
    schema::Schema,
    HttpMethod, RefOr, Required,
};

/// `GET /api/docs`
pub async fn page(State(options): State<LeptosOptions>) -> Html<&'static str> {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| {
        let assets = app::assets::Assets::load(std::path::Path::new(options.site_root.as_ref()));
        render(&assets.css)
    }))
}

/// Escapes text for HTML element content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A schema in a few words: `string`, `integer`, `AppBody`, `one of image, dockerfile`.
fn describe(schema: &RefOr<Schema>) -> String {
    match schema {
        RefOr::Ref(r) => r
            .ref_location
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned(),
        RefOr::T(schema) => {
            let value = serde_json::to_value(schema).unwrap_or_default();
            if let Some(values) = value.get("enum").and_then(|v| v.as_array()) {
                let words: Vec<String> = values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                return format!("one of {}", words.join(", "));
            }
            match value.get("type") {
                Some(serde_json::Value::String(t)) => t.clone(),
                Some(serde_json::Value::Array(types)) => types
                    .iter()
                    .filter_map(|t| t.as_str())
                    .filter(|t| *t != "null")
                    .collect::<Vec<_>>()
                    .join(" or "),
                _ => value
                    .get("oneOf")
                    .and_then(|v| v.as_array())
                    .map(|alternatives| {
                        alternatives
                            .iter()
                            .filter_map(|a| a.get("$ref").and_then(|r| r.as_str()))
                            .filter_map(|r| r.rsplit('/').next())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    })
                    .unwrap_or_default(),
            }
        }
    }
}

fn parameter_row(out: &mut String, parameter: &Parameter) {
    let location = match parameter.parameter_in {
        ParameterIn::Path => "path",
        ParameterIn::Query => "query",
        ParameterIn::Header => "header",
        ParameterIn::Cookie => "cookie",
    };
    let required = matches!(parameter.required, Required::True);
    let _ = write!(
        out,
        "<tr><td><code>{}</code></td><td>{location}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        escape(&parameter.name),
        escape(
            &parameter
                .schema
                .as_ref()
                .map(describe)
                .unwrap_or_else(|| "string".into())
        ),
        if required { "yes" } else { "no" },
        escape(parameter.description.as_deref().unwrap_or("")),
    );
}

fn operation_section(out: &mut String, method: &str, path: &str, operation: &Operation) {
    let id = format!("{method}-{path}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>();
    let _ = write!(
        out,
        "<section class=\"panel\" id=\"{}\"><h3><code>{} {}</code></h3>",
        escape(&id),
        method.to_uppercase(),
        escape(path),
    );
    if let Some(summary) = &operation.summary {
        let _ = write!(out, "<p><strong>{}</strong></p>", escape(summary));
    }
    if let Some(description) = &operation.description {
        let _ = write!(out, "<p>{}</p>", escape(description));
    }
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    if !parameters.is_empty() {
        out.push_str(
            "<table><thead><tr><th>parameter</th><th>in</th><th>type</th><th>required</th>\
             <th>meaning</th></tr></thead><tbody>",
        );
        for parameter in parameters {
            parameter_row(out, parameter);
        }
        out.push_str("</tbody></table>");
    }
    if let Some(body) = &operation.request_body {
        let schemas: Vec<String> = body
            .content
            .iter()
            .map(|(media, content)| {
                format!(
                    "{} (<code>{}</code>)",
                    escape(&content.schema.as_ref().map(describe).unwrap_or_default()),
                    escape(media)
                )
            })
            .collect();
        let required = matches!(body.required, Some(Required::True));
        let _ = write!(
            out,
            "<p>Body{}: {}</p>",
            if required { "" } else { " (optional)" },
            schemas.join(", ")
        );
    }
    out.push_str("<ul>");
    for (status, response) in &operation.responses.responses {
        let (description, body) = match response {
            RefOr::T(response) => (
                response.description.clone(),
                response
                    .content
                    .iter()
                    .map(|(media, content)| {
                        let schema = content.schema.as_ref().map(describe).unwrap_or_default();
                        if schema.is_empty() {
                            media.clone()
                        } else {
                            format!("{schema} ({media})")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            RefOr::Ref(r) => (r.ref_location.clone(), String::new()),
        };
        let _ = write!(
            out,
            "<li><strong>{}</strong> {}{}</li>",
            escape(status),
            escape(&description),
            if body.is_empty() {
                String::new()
            } else {
                format!(" → <code>{}</code>", escape(&body))
            }
        );
    }
    out.push_str("</ul></section>");
}

fn render(stylesheet: &str) -> String {
    let doc = spec();
    let mut out = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Berth JSON API</title>\
         <link rel=\"stylesheet\" href=\"{}\"></head><body><main class=\"content\">",
        escape(stylesheet)
    );
    let _ = write!(
        out,
        "<header class=\"page-header\"><h1>{} {}</h1></header>",
        escape(&doc.info.title),
        escape(&doc.info.version)
    );
    if let Some(description) = &doc.info.description {
        let _ = write!(out, "<p>{}</p>", escape(description));
    }
    out.push_str(
        "<p>The machine-readable document: <a href=\"/api/v1/openapi.json\">\
         <code>/api/v1/openapi.json</code></a> (OpenAPI 3.1). Errors are \
         <code>{\"error\": {\"kind\", \"message\", \"field\"?, \"reason\"?}}</code>.</p>",
    );
    // Operations grouped by their first tag, in the document's tag order.
    let tags: Vec<(String, Option<String>)> = doc
        .tags
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|t| (t.name.clone(), t.description.clone()))
        .collect();
    out.push_str("<nav><ul>");
    for (name, _) in &tags {
        let _ = write!(out, "<li><a href=\"#tag-{0}\">{0}</a></li>", escape(name));
    }
    out.push_str("</ul></nav>");
    for (name, description) in &tags {
        let _ = write!(out, "<h2 id=\"tag-{0}\">{0}</h2>", escape(name));
        if let Some(description) = description {
            let _ = write!(out, "<p class=\"muted\">{}</p>", escape(description));
        }
        for (path, item) in &doc.paths.paths {
            for (method, operation) in [
                (HttpMethod::Get, &item.get),
                (HttpMethod::Post, &item.post),
                (HttpMethod::Put, &item.put),
                (HttpMethod::Patch, &item.patch),
                (HttpMethod::Delete, &item.delete),
            ] {
                let Some(operation) = operation else { continue };
                let first_tag = operation.tags.as_ref().and_then(|t| t.first());
                if first_tag != Some(name) {
                    continue;
                }
                let method = serde_json::to_value(&method)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                operation_section(&mut out, &method, path, operation);
            }
        }
    }
    out.push_str("</main></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
