//! The dashboard page: the report's stylesheet, a few lines of its own and
//! one script that reads `/events` and redraws per group every second.
//! Offline: nothing is loaded from anywhere but stampede.

use crate::report::html::{escape, STYLE};

/// Per group: a card of the latest figures (each `<dd>` carries
/// `data-group` and `data-k`, the `timeseries.csv` column it shows) and two
/// small time charts drawn as inline SVG.
const SCRIPT: &str = r#"
var groups={},order=[],NS='http://www.w3.org/2000/svg',KINDS=[];
function fmt(v,d){if(v===null||v===undefined||v==='')return '\u2014';return typeof v==='number'?v.toLocaleString('en-US',{maximumFractionDigits:d===undefined?1:d}):String(v)}
function card(r){var g=groups[r.group];if(g)return g;
 var s=document.createElement('section');s.className='group';s.setAttribute('data-group',r.group);
 var fields=[['connections','connected clients',0],['deliveries_per_s','deliveries / s',1],['delivery_p50_ms','delivery p50 (ms)',3],
  ['delivery_p99_ms','delivery p99 (ms)',3],['errors_total','errors so far',0],['errors_by_kind','errors by kind'],['lost','lost (settled at phase end)',0],
  ['client_cpu_pct','stampede CPU (%)',1],['loadgen_lag_ms','stampede event-loop lag (ms)',1],['target_cpu_pct','target CPU (%)',1],
  ['target_rss_mb','target RSS (MB)',1],['elapsed_s','elapsed (s)',1],['stage','stage']];
 var h='<h2>'+esc(r.group)+' <span class="muted">'+esc(r.transport)+'</span></h2><dl>';
 fields.forEach(function(f){h+='<dt>'+f[1]+'</dt><dd data-group="'+esc(r.group)+'" data-k="'+f[0]+'">\u2014</dd>'});
 h+='</dl><div class="charts"><figure><figcaption>deliveries / s</figcaption><svg viewBox="0 0 400 140" data-chart="rate"></svg></figure>'+
  '<figure><figcaption>delivery p50 and <span class="p99">p99</span> (ms)</figcaption><svg viewBox="0 0 400 140" data-chart="lat"></svg></figure></div>';
 s.innerHTML=h;document.getElementById('groups').appendChild(s);
 g={el:s,rows:[],errors:0,fields:fields};groups[r.group]=g;order.push(r.group);return g}
function esc(t){return String(t).replace(/[&<>"]/g,function(c){return{'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]})}
function set(g,k,v,d){var e=g.el.querySelector('dd[data-k="'+k+'"]');if(e){e.textContent=fmt(v,d);e.setAttribute('data-v',v===null||v===undefined?'':v)}}
function line(svg,pts,cls,lo,hi,t0,t1){if(pts.length<1)return;var d='';pts.forEach(function(p,i){
 var x=8+(t1>t0?(p[0]-t0)/(t1-t0):1)*384,y=130-(hi>lo?(p[1]-lo)/(hi-lo):0)*118;d+=(i?'L':'M')+x.toFixed(1)+' '+y.toFixed(1)});
 var pa=document.createElementNS(NS,'path');pa.setAttribute('d',d);pa.setAttribute('class',cls);svg.appendChild(pa)}
function chart(svg,series,unit){while(svg.firstChild)svg.removeChild(svg.firstChild);var all=[],t0=Infinity,t1=-Infinity;
 series.forEach(function(s){s[0].forEach(function(p){all.push(p[1]);t0=Math.min(t0,p[0]);t1=Math.max(t1,p[0])})});
 var hi=all.length?Math.max.apply(null,all):1;if(!(hi>0))hi=1;
 var ax=document.createElementNS(NS,'path');ax.setAttribute('d','M8 12L8 130L392 130');ax.setAttribute('class','axis');svg.appendChild(ax);
 var lb=document.createElementNS(NS,'text');lb.setAttribute('x','12');lb.setAttribute('y','10');lb.textContent=fmt(hi,2)+' '+unit;svg.appendChild(lb);
 series.forEach(function(s){line(svg,s[0],s[1],0,hi,t0,t1)})}
function draw(g){var r=g.rows[g.rows.length-1];
 g.fields.forEach(function(f){if(f[0]in r)set(g,f[0],r[f[0]],f[2])});
 set(g,'errors_total',g.errors,0);
 var kinds=KINDS.filter(function(k){return g.kinds&&g.kinds[k]>0}).map(function(k){return k+' '+g.kinds[k].toLocaleString('en-US')});
 var ek=g.el.querySelector('dd[data-k="errors_by_kind"]');ek.textContent=kinds.length?kinds.join(', '):'none';
 var pts=function(k){return g.rows.filter(function(x){return x[k]!==null&&x[k]!==undefined}).map(function(x){return[x.elapsed_s,x[k]]})};
 chart(g.el.querySelector('svg[data-chart="rate"]'),[[pts('deliveries_per_s'),'s0']],'/s');
 chart(g.el.querySelector('svg[data-chart="lat"]'),[[pts('delivery_p50_ms'),'s0'],[pts('delivery_p99_ms'),'s1']],'ms')}
var dirty={};
function onrow(r){var g=card(r);g.rows.push(r);if(g.rows.length>900)g.rows.shift();g.errors+=r.errors||0;g.kinds=g.kinds||{};
 Object.keys(r).forEach(function(k){if(k.indexOf('errors_')===0){var n=k.slice(7);if(KINDS.indexOf(n)<0)KINDS.push(n);g.kinds[n]=(g.kinds[n]||0)+(r[k]||0)}});
 dirty[r.group]=1;document.getElementById('elapsed').textContent=fmt(r.elapsed_s,1)+' s'}
function onphase(rows){rows.forEach(function(s){var g=groups[s.group];if(g)set(g,'lost',s.lost,0)})}
var es=new EventSource('events');
es.onmessage=function(m){var v=JSON.parse(m.data);
 if(v.type==='row')onrow(v);else if(v.type==='phase')onphase(v.rows);
 else if(v.type==='end'){var st=document.getElementById('status');st.textContent=v.status;st.className=v.status==='completed'?'ok':'warn';es.close()}};
es.onerror=function(){var st=document.getElementById('status');if(st.textContent==='running')st.textContent='disconnected'};
setInterval(function(){Object.keys(dirty).forEach(function(k){draw(groups[k])});dirty={}},250);
"#;

const OWN_STYLE: &str = "
section.group{border:1px solid #e4e4e4;border-radius:4px;padding:0 1em 1em;margin:1em 0}
section.group h2{border:0;margin-top:.6em}.charts{display:flex;flex-wrap:wrap;gap:1em}
.charts figure{margin:.5em 0;flex:1 1 380px}.charts svg{width:100%;height:auto}
svg path{fill:none;stroke-width:1.6}svg path.axis{stroke:#bbb;stroke-width:1}
svg path.s0{stroke:#1f77b4}svg path.s1{stroke:#d62728}.p99{color:#d62728}
svg text{font-size:10px;fill:#777}
";

/// The whole page for a run of `title`.
pub fn html(title: &str) -> String {
    let t = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} \u{2014} live</title><style>{STYLE}{OWN_STYLE}</style></head><body>\n\
         <h1>{t} <span class=\"muted\">live</span></h1>\n\
         <dl><dt>status</dt><dd id=\"status\">running</dd><dt>elapsed</dt><dd id=\"elapsed\">\u{2014}</dd></dl>\n\
         <p class=\"muted\">One row per group per second, as written to timeseries.csv; \
         lost events are settled at each phase's end.</p>\n\
         <div id=\"groups\"></div>\n<script>{SCRIPT}</script>\n</body></html>\n"
    )
}
